//! One-layer LSTM and GRU, sequence 50, batch 32, input 32, hidden 128, f32 on the CPU:
//! forward, and forward + backward of `L = sum(output * U)` (gradients of the input and every
//! parameter), through the fused CPU kernel and through the generic per-step candle ops. Run
//! on one core, as the figures in the README were:
//! `RAYON_NUM_THREADS=1 taskset -c 0 cargo bench -p deeprl-nets --bench rnn -- fused`.
//! The PyTorch twin (`torch.set_num_threads(1)`, `nn.LSTM(32, 128)` / `nn.GRU(32, 128)` on a
//! `(50, 32, 32)` input, `(out * U).sum().backward()`) is `nets/benches/torch/rnn.py`.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use criterion::{criterion_group, criterion_main, Criterion};
use deeprl_nets::rnn::{Rnn, RnnConfig};

const T: usize = 50;
const N: usize = 32;
const INPUT: usize = 32;
const HIDDEN: usize = 128;

fn recurrent(c: &mut Criterion) {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (T, N, INPUT), &dev).unwrap()).unwrap();
    let u = Tensor::randn(0f32, 1.0, (T, N, HIDDEN), &dev).unwrap();
    for (kind, config) in
        [("lstm", RnnConfig::lstm(INPUT, HIDDEN)), ("gru", RnnConfig::gru(INPUT, HIDDEN))]
    {
        let vm = VarMap::new();
        let rnn = Rnn::seeded(config, &vm, kind, DType::F32, &dev, 0).unwrap();
        for (name, fused) in [("fused", true), ("generic", false)] {
            bench_layer(
                c,
                &format!("{kind}_t50_b32_i32_h128"),
                name,
                &rnn.clone().with_fused_cpu(fused),
                &x,
                &u,
            );
        }
    }
}

fn bench_layer(c: &mut Criterion, group: &str, name: &str, rnn: &Rnn, x: &Var, u: &Tensor) {
    c.bench_function(&format!("{group}/forward/{name}"), |b| {
        b.iter(|| rnn.forward(x.as_tensor(), None).unwrap().output)
    });
    c.bench_function(&format!("{group}/forward_backward/{name}"), |b| {
        b.iter(|| {
            let out = rnn.forward(x.as_tensor(), None).unwrap().output;
            (out * u).unwrap().sum_all().unwrap().backward().unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = recurrent
}
criterion_main!(benches);
