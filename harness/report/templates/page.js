window.addEventListener("load", function () {
  var imgs = document.querySelectorAll("figure img"), ok = 0;
  imgs.forEach(function (img) {
    if (img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().height > 0) { ok += 1; }
    else { var p = document.createElement("p"); p.className = "broken";
           p.textContent = "This figure could not be shown: " + img.alt; img.replaceWith(p); }
  });
  document.documentElement.setAttribute("data-figures-loaded", ok + "/" + imgs.length);
});
