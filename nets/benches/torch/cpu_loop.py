"""The plain-loop timing the PyTorch twins share (as nets/benches/common/mod.rs does for the
Rust benches): after `warm_up` calls, `iters` calls of `step`, then the wall time, CPU time and
minor page faults per call, in the format the Rust benches print."""
import resource, time


def cpu_loop(label, step, iters, warm_up=10):
    for _ in range(warm_up):
        step()
    r0, c0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
    for _ in range(iters):
        step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0.ru_minflt
    print(f"{label}: wall {wall / iters * 1e3:.3f} ms  cpu {cpu / iters * 1e3:.3f} ms"
          f"  minor faults {faults / iters:.0f} per step")
