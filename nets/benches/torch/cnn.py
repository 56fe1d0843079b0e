"""PyTorch twin of nets/benches/cnn.rs (documentation: not run by cargo, needs torch), one thread:

* LeNet-5 (ReLU, average pooling), batch 64 of 1x32x32: forward under no_grad, and forward,
  cross-entropy and backward;
* a ResNet basic unit at 64 channels on 32x32 (identity shortcut), batch 8, training mode:
  forward, sum(y * u) and backward.

python nets/benches/torch/cnn.py  -> the median milliseconds of each.
python nets/benches/torch/cnn.py cpu [lenet|residual] ITERS
  -> forward + backward in a plain loop of ITERS steps (after 10 warm-up steps): wall time,
     CPU time and minor page faults per step, as the Rust bench prints with CNN_STEPS=lenet:ITERS.
"""
import statistics, sys, time
from cpu_loop import cpu_loop
import torch, torch.nn as nn, torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)


class LeNet5(nn.Module):
    def __init__(s):
        super().__init__()
        s.conv1 = nn.Conv2d(1, 6, 5); s.conv2 = nn.Conv2d(6, 16, 5)
        s.fc1 = nn.Linear(400, 120); s.fc2 = nn.Linear(120, 84); s.fc3 = nn.Linear(84, 10)

    def forward(s, x):
        x = F.avg_pool2d(F.relu(s.conv1(x)), 2); x = F.avg_pool2d(F.relu(s.conv2(x)), 2)
        x = x.flatten(1)
        return s.fc3(F.relu(s.fc2(F.relu(s.fc1(x)))))


class Basic(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False); s.bn1 = nn.BatchNorm2d(c)
        s.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False); s.bn2 = nn.BatchNorm2d(c)

    def forward(s, x):
        return F.relu(s.bn2(s.conv2(F.relu(s.bn1(s.conv1(x))))) + x)


def med(f, n):
    for _ in range(3):
        f()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


net = LeNet5(); x = torch.rand(64, 1, 32, 32) * 2 - 1; y = torch.arange(64) * 7 % 10


def lenet_fb():
    net.zero_grad(set_to_none=True); F.cross_entropy(net(x), y).backward()


def lenet_f():
    with torch.no_grad():
        net(x)


unit = Basic(64).train(); xr = torch.rand(8, 64, 32, 32) * 2 - 1; u = torch.rand(8, 64, 32, 32) * 2 - 1


def res_fb():
    unit.zero_grad(set_to_none=True); (unit(xr) * u).sum().backward()


if len(sys.argv) > 1 and sys.argv[1] == "cpu":
    kind, iters = sys.argv[2], int(sys.argv[3])
    step = {"lenet": lenet_fb, "residual": res_fb}[kind]
    cpu_loop(f"torch {kind} forward_backward", step, iters)
    sys.exit(0)
print(f"torch lenet5 forward(no_grad) {med(lenet_f, 100):.2f} ms; forward_backward "
      f"{med(lenet_fb, 60):.2f} ms; residual fwd+bwd {med(res_fb, 20):.2f} ms")
