//! The plain-loop timing mode the CNN and RNN benches share: a fixed number of steps after a
//! warm-up, reporting wall time, CPU time and minor page faults per step. CPU time, unlike
//! criterion's wall time, leaves out what the hypervisor steals on a shared machine, so it
//! is the steadier figure to set against the PyTorch twins' (which print the same three).
//! Also the benches' global allocator.

use std::time::Instant;

/// (CPU seconds, minor page faults) of this process so far, from `/proc/self/stat`.
fn cpu_and_faults() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which ends with the last ')'): state is field 3, so
    // minflt (10), utime (14) and stime (15) are at indices 7, 11 and 12 of the rest.
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let field = |i: usize| rest[i].parse::<u64>().unwrap();
    // Linux reports times in USER_HZ, which is 100 on every architecture it runs on.
    ((field(11) + field(12)) as f64 / 100.0, field(7))
}

/// Runs `step` `warm_up` times, then `steps` times, and prints `label`'s wall time, CPU time
/// and minor page faults per step.
pub fn plain_loop(label: &str, warm_up: usize, steps: usize, mut step: impl FnMut()) {
    for _ in 0..warm_up {
        step();
    }
    let (cpu0, faults0) = cpu_and_faults();
    let start = Instant::now();
    for _ in 0..steps {
        step();
    }
    let wall = start.elapsed().as_secs_f64();
    let (cpu1, faults1) = cpu_and_faults();
    let per = |v: f64| v / steps as f64;
    println!(
        "{label}: wall {:.3} ms  cpu {:.3} ms  minor faults {:.0} per step",
        per(wall) * 1e3,
        per(cpu1 - cpu0) * 1e3,
        per((faults1 - faults0) as f64)
    );
}

/// Parses a `KIND:STEPS` spec from the environment variable `var`.
pub fn parse_spec<'a>(var: &str, spec: &'a str) -> (&'a str, usize) {
    let (kind, steps) = spec.split_once(':').unwrap_or_else(|| panic!("{var}=KIND:STEPS"));
    (kind, steps.parse().unwrap_or_else(|_| panic!("{var}: a number of steps after ':'")))
}

/// mimalloc for every bench that includes this module, as the `deeprl` binary uses: the
/// steps allocate their tensors anew, and with glibc's allocator their pages are returned to
/// the kernel and faulted in again (see the README's figures with either allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
