"""One of two plugin files claiming the id 'twin' (tests/test_runner.py expects an error naming both)."""

from harness.variant import Variant


class TwinOne(Variant):
    id = "twin"
    name = "first twin"

    def parameter_shapes(self, input_size, hidden_size):
        return {"W": (input_size, hidden_size)}

    def step(self, ops, p, x, state):
        h = ops.tanh(ops.matmul(x, p["W"]))
        return h, (h,)
