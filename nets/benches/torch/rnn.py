"""PyTorch twin of nets/benches/rnn.rs (documentation: not run by cargo, needs torch):
one-layer LSTM or GRU, sequence 50, batch 32, input 32, hidden 128, f32, one thread;
forward, and forward + backward of `L = sum(output * U)` (gradients for the input and every
parameter, as candle's backward computes them).

RAYON_NUM_THREADS=1 taskset -c 0 python nets/benches/torch/rnn.py [lstm|gru] [ITERS]
  -> the median milliseconds of forward, then of forward + backward (after a warm-up).
RAYON_NUM_THREADS=1 taskset -c 0 python nets/benches/torch/rnn.py [lstm|gru] [ITERS] cpu
  -> forward + backward in a plain loop of ITERS steps (after 10 warm-up steps): wall time,
     CPU time and minor page faults per step, as the Rust bench prints with RNN_STEPS=lstm:ITERS.
"""
import statistics, sys, time
from cpu_loop import cpu_loop
import torch, torch.nn as nn

torch.set_num_threads(1)
torch.manual_seed(0)

T, N, INPUT, HIDDEN = 50, 32, 32, 128


def median_ms(f, iters):
    for _ in range(max(3, iters // 10)):
        f()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        f()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "lstm"
    iters = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    layer = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](INPUT, HIDDEN)
    x = torch.randn(T, N, INPUT, requires_grad=True)
    u = torch.randn(T, N, HIDDEN)

    def forward():
        with torch.no_grad():
            layer(x)

    def forward_backward():
        out, _ = layer(x)
        (out * u).sum().backward()
        layer.zero_grad(set_to_none=True)
        x.grad = None

    if len(sys.argv) > 3 and sys.argv[3] == "cpu":
        cpu_loop(f"{kind} forward_backward", forward_backward, iters)
        return
    fwd = median_ms(forward, iters)
    fb = median_ms(forward_backward, iters)
    print(f"{kind} forward {fwd:.3f} ms  forward_backward {fb:.3f} ms")


if __name__ == "__main__":
    main()
