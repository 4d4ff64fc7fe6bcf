"""Fewer, larger products for a population's unchanged ``step``: the ``matmul`` of the engines' ops
namespaces (``torch_population``, ``tf_population``). Numerically the same products, row by row and
column by column; only how many calls compute them changes.

* ``matmul(x_t, P)`` of the current input and a parameter: ``x P`` for every time step at once, on the
  first call, then the step's slice (taken with ``unbind``/``unstack``: its backward is one stack, not
  a full-size zero tensor per step, the O(T²) trap of indexing ``xw[t]``).
* ``matmul(a, P_1) ... matmul(a, P_k)`` of one tensor with several parameters (an LSTM's four gates
  from h): the step's first such call computes ``a [P_1 ... P_k]`` and hands out the slices. Which
  parameters meet one tensor is recorded at t = 0, where every product is plain; a step that later
  multiplies in another order or with others only falls back to plain products.
"""

from __future__ import annotations

from typing import Any


class Hoisting:
    """Mixed into an ops namespace before the framework's ops class, which supplies ``_plain(a, b)``
    (its matmul), ``_all_steps(b)`` (x_t b for every t, in one product), ``_join(tensors)`` (side by
    side along the last axis) and ``_split(tensor, sizes)`` (the inverse). ``_at(t)`` starts time step t
    and returns x_t."""

    def __init__(self, steps: list[Any], params: dict[str, Any]) -> None:
        self._steps = steps  # x_t for every t, each (M, B, I)
        self._params = {id(p): p for p in params.values()}
        self._products: dict[int, list[Any]] = {}  # id(P) -> x_t P for every t
        self._t = 0
        self._seen: dict[int, tuple[Any, list[int]]] = {}  # t = 0: id(a) -> (a, ids of its parameters)
        self._groups: dict[int, list[int]] = {}  # first parameter's id -> the parameters that share an a
        self._joined: dict[int, Any] = {}  # first parameter's id -> those parameters side by side
        self._slices: dict[tuple[int, int], tuple[Any, Any]] = {}  # this step's (id(a), id(P)) -> (a, a P)

    def _at(self, t: int) -> Any:
        if t == 1:  # what t = 0 recorded becomes the groups
            self._groups = {ids[0]: ids for _, ids in self._seen.values() if len(ids) > 1}
            self._seen = {}
        self._t, self._slices = t, {}  # the slices hold their a: no id is reused within a step
        return self._steps[t]

    def matmul(self, a, b):
        if id(b) not in self._params:
            return self._plain(a, b)
        if a is self._steps[self._t]:
            if id(b) not in self._products:
                self._products[id(b)] = self._all_steps(b)
            return self._products[id(b)][self._t]
        if self._t == 0:
            ids = self._seen.setdefault(id(a), (a, []))[1]  # keeps a alive: its id stays its own
            if id(b) not in ids:
                ids.append(id(b))
            return self._plain(a, b)
        cached = self._slices.get((id(a), id(b)))
        if cached is not None and cached[0] is a:
            return cached[1]
        if id(b) not in self._groups:
            return self._plain(a, b)
        group = self._groups[id(b)]
        if id(b) not in self._joined:
            self._joined[id(b)] = self._join([self._params[i] for i in group])
        sizes = [int(self._params[i].shape[-1]) for i in group]
        for i, part in zip(group, self._split(self._plain(a, self._joined[id(b)]), sizes)):
            self._slices[(id(a), i)] = (a, part)
        return self._slices[(id(a), id(b))][1]
