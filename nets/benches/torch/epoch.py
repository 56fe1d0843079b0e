"""PyTorch twin of nets/benches/epoch.rs (documentation: not run by cargo, needs torch):
one training epoch, f32, batch 64, cross-entropy, Adam (lr 1e-3), one thread; loss and
accuracy read back every batch, as `fit` does.

* LeNet-5 (ReLU, average pooling) on the 1,438 training digits enlarged 3x (nearest) and
  padded by 4 to 1x32x32 (the split is a seeded shuffle, not ChaCha's; only sizes matter);
* ResNet-20 (3x3 stem of 16 maps, 3 stages x 3 basic units at 16/32/64 maps, 1x1 projection
  shortcuts with batch norm, global average pooling) on 1,024 random 3x32x32 images.

python nets/benches/torch/epoch.py [lenet|resnet] [EPOCHS]  -> the median milliseconds per epoch
(after one warm-up epoch), from the repository root.
python nets/benches/torch/epoch.py cpu [lenet|resnet] EPOCHS  -> wall time, CPU time and minor page
faults per epoch over EPOCHS epochs (after one warm-up epoch), as the Rust bench prints with
EPOCHS=resnet:N.
"""
import gzip, os, statistics, sys, time
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
    def __init__(s, i, o, stride):
        super().__init__()
        s.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False); s.bn1 = nn.BatchNorm2d(o)
        s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(o)
        s.downsample = None
        if stride != 1 or i != o:
            s.downsample = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))

    def forward(s, x):
        h = F.relu(s.bn1(s.conv1(x)))
        h = s.bn2(s.conv2(h))
        return F.relu(h + (x if s.downsample is None else s.downsample(x)))


class ResNet20(nn.Module):
    def __init__(s, n=3):
        super().__init__()
        s.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False); s.bn1 = nn.BatchNorm2d(16)
        units, c = [], 16
        for stage, w in enumerate([16, 32, 64]):
            for u in range(n):
                units.append(Basic(c, w, 2 if stage > 0 and u == 0 else 1)); c = w
        s.units = nn.Sequential(*units)
        s.fc = nn.Linear(64, 10)

    def forward(s, x):
        h = s.units(F.relu(s.bn1(s.conv1(x))))
        return s.fc(h.mean((2, 3)))


def digits32():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../../data/digits.csv.gz')
    rows = [list(map(float, l.split(','))) for l in gzip.open(path, 'rt') if l.strip()]
    t = torch.tensor(rows)
    x, y = t[:, :64] / 16.0, t[:, 64].long()
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    n_test = round(0.2 * len(x))
    idx = perm[: len(x) - n_test]
    x = x[idx].reshape(-1, 1, 8, 8).repeat_interleave(3, 2).repeat_interleave(3, 3)
    return F.pad(x, (4, 4, 4, 4)).contiguous(), y[idx]


def epoch(net, opt, x, y, bs=64):
    net.train()
    perm = torch.randperm(len(x))
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), bs):
        b = perm[i:i + bs]
        xb, yb = x[b], y[b]
        opt.zero_grad(set_to_none=True)
        logits = net(xb)
        loss = F.cross_entropy(logits, yb)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(b)
        correct += (logits.argmax(1) == yb).sum().item()
    return loss_sum / len(x), correct / len(x)


def main():
    args = sys.argv[1:]
    cpu = bool(args) and args[0] == 'cpu'
    if cpu:
        args = args[1:]
    which = args[0] if args else 'lenet'
    epochs = int(args[1]) if len(args) > 1 else 10
    if which == 'lenet':
        x, y = digits32(); net = LeNet5()
    else:
        x = torch.rand(1024, 3, 32, 32); y = torch.randint(0, 10, (1024,)); net = ResNet20()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    epoch(net, opt, x, y)  # warm-up
    if cpu:
        cpu_loop(f"torch {which} epoch", lambda: epoch(net, opt, x, y), epochs, warm_up=0)
        return
    times = []
    for _ in range(epochs):
        t = time.perf_counter(); epoch(net, opt, x, y); times.append(time.perf_counter() - t)
    print(f"torch {which} {len(x)} images: median {statistics.median(times)*1e3:.1f} ms per epoch over {epochs} [{min(times)*1e3:.1f}-{max(times)*1e3:.1f}]")


main()
