"""The essay's "single tanh layer": the simple (Elman) recurrent network."""

from harness.variant import Variant


class SimpleRNN(Variant):
    """Elman recurrent network (Elman 1990), the essay's "single tanh layer":

        h_t = tanh(x_t W + h_{t-1} R + b)

    Parameters ``W`` (I, H), ``R`` (H, H), ``b`` (H,). Fused kernel: ``torch.nn.RNN`` /
    ``keras.layers.SimpleRNN``.
    """

    id = "rnn"
    name = "tanh RNN"
    reference = "Elman 1990"
    family = "rnn"
    fused_kernel = "rnn"

    def parameter_shapes(self, input_size, hidden_size):
        return {"W": (input_size, hidden_size), "R": (hidden_size, hidden_size), "b": (hidden_size,)}

    def step(self, ops, p, x, state):
        (h,) = state
        h = ops.tanh(ops.matmul(x, p["W"]) + ops.matmul(h, p["R"]) + p["b"])
        return h, (h,)
