//! Sequence and attention layers without torch reference data: finite-difference gradient
//! checks (f64) of every layer, output shapes, the stateful mode, masking, causality, and
//! errors on bad input. (LSTM/GRU/RNN themselves are checked against torch in the root
//! crate's `conformance_layers_rnn`.)

use candle_core::{DType, Device, Module, Result, Tensor, Var};
use candle_nn::VarMap;
use deeprl_nets::attention::{
    causal_mask, AdditiveAttention, DecoderMasks, DotAttention, Embedding, EncoderMasks,
    GeneralAttention, MultiHeadAttention, MultiHeadAttentionConfig, SinusoidalPositionalEncoding,
    TransformerConfig, TransformerDecoderLayer, TransformerEncoderLayer,
};
use deeprl_nets::gradcheck::check_gradients;
use deeprl_nets::rnn::{
    lengths_from_mask, CellKind, DilatedCausalConv, DilatedCausalConvConfig, Rnn, RnnConfig,
    RnnState, StatefulRnn,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CPU: Device = Device::Cpu;

/// Uniform(-1, 1) values from a seeded generator.
fn rand_t(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| 2.0 * rng.random::<f64>() - 1.0).collect();
    Tensor::from_vec(v, shape, &CPU).unwrap()
}

fn rand_var(shape: &[usize], seed: u64) -> Var {
    Var::from_tensor(&rand_t(shape, seed)).unwrap()
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    vals(a).iter().zip(vals(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Every variable of `vm` plus `extra`, checked by central differences on the loss
/// `sum(f() * U)` with a fixed random `U` (so that sums that are constant, such as softmax
/// rows, still have informative gradients).
fn gradcheck(vm: &VarMap, extra: &[&Var], f: impl Fn() -> Result<Tensor>) {
    let mut vars: Vec<Var> = vm.all_vars();
    vars.extend(extra.iter().map(|v| (*v).clone()));
    assert!(!vars.is_empty());
    let shape = f().unwrap().dims().to_vec();
    let upstream = rand_t(&shape, 999);
    let report = check_gradients(&vars, || f()?.mul(&upstream), 1e-6, 1e-7, 1e-5).unwrap();
    assert!(report.passed(), "{report:?}");
}

fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

fn rnn(config: RnnConfig, seed: u64) -> (VarMap, Rnn) {
    let vm = VarMap::new();
    let rnn = Rnn::seeded(config, &vm, "rnn", DType::F64, &CPU, seed).unwrap();
    (vm, rnn)
}

// ---------------------------------------------------------------- recurrent layers

#[test]
fn peephole_lstm_gradients_and_shapes() {
    let config = RnnConfig::new(CellKind::Lstm { peephole: true }, 3, 2).with_layers(2);
    let (vm, layer) = rnn(config, 1);
    let names: Vec<String> = vm.data().lock().unwrap().keys().cloned().collect();
    for n in ["rnn.weight_ci_l0", "rnn.weight_cf_l1", "rnn.weight_co_l1", "rnn.bias_hh_l1"] {
        assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
    }
    let x = rand_var(&[4, 2, 3], 2);
    let h0 = rand_var(&[2, 2, 2], 3);
    let c0 = rand_var(&[2, 2, 2], 4);
    let state = RnnState { h: h0.as_tensor().clone(), c: Some(c0.as_tensor().clone()) };
    let out = layer.forward(x.as_tensor(), Some(&state)).unwrap();
    assert_eq!(out.output.dims(), [4, 2, 2]);
    assert_eq!(out.state.h.dims(), [2, 2, 2]);
    assert_eq!(out.state.c.as_ref().unwrap().dims(), [2, 2, 2]);
    assert_eq!(out.last().unwrap().dims(), [2, 2]);
    gradcheck(&vm, &[&x, &h0, &c0], || {
        let o = layer.forward(x.as_tensor(), Some(&state))?;
        Tensor::cat(&[o.output.flatten_all()?, o.state.c.unwrap().flatten_all()?], 0)
    });
    // The peepholes matter: zeroing them changes the output.
    let plain = vm
        .data()
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains("weight_c"))
        .map(|(_, v)| v.clone())
        .collect::<Vec<_>>();
    let before = layer.forward(x.as_tensor(), Some(&state)).unwrap().output;
    for v in &plain {
        v.set(&v.zeros_like().unwrap()).unwrap();
    }
    let after = layer.forward(x.as_tensor(), Some(&state)).unwrap().output;
    assert!(max_diff(&before, &after) > 1e-3);
}

#[test]
fn masked_recurrent_gradients() {
    for kind in
        [CellKind::Lstm { peephole: false }, CellKind::Gru, CellKind::RnnTanh, CellKind::RnnRelu]
    {
        let config = RnnConfig::new(kind, 3, 2).with_layers(2).with_bidirectional(true);
        let (vm, layer) = rnn(config, 5);
        let x = rand_var(&[4, 3, 3], 6);
        gradcheck(&vm, &[&x], || {
            let o = layer.forward_masked(x.as_tensor(), None, Some(&[4, 2, 1]))?;
            Tensor::cat(&[o.output.flatten_all()?, o.state.h.flatten_all()?], 0)
        });
    }
}

/// The fused CPU kernel of the LSTM (used without peepholes and masks) against finite
/// differences, and against the generic per-step ops in f32 with saturating inputs (its
/// fast exponential must stay within f32 accuracy).
#[test]
fn fused_lstm_gradients_and_agreement() {
    let config = RnnConfig::lstm(3, 5).with_layers(2).with_bidirectional(true);
    let (vm, layer) = rnn(config.clone(), 21);
    let x = rand_var(&[4, 2, 3], 22);
    let h0 = rand_var(&[4, 2, 5], 23);
    let c0 = rand_var(&[4, 2, 5], 24);
    let state = RnnState { h: h0.as_tensor().clone(), c: Some(c0.as_tensor().clone()) };
    gradcheck(&vm, &[&x, &h0, &c0], || {
        let o = layer.forward(x.as_tensor(), Some(&state))?;
        let c = o.state.c.unwrap();
        Tensor::cat(&[o.output.flatten_all()?, o.state.h.flatten_all()?, c.flatten_all()?], 0)
    });
    let vm32 = VarMap::new();
    let fused = Rnn::seeded(config, &vm32, "", DType::F32, &CPU, 25).unwrap();
    let generic = fused.clone().with_fused_cpu(false);
    let x32 =
        Var::from_tensor(&(rand_t(&[9, 3, 3], 26) * 4.0).unwrap().to_dtype(DType::F32).unwrap())
            .unwrap();
    let u = rand_t(&[9, 3, 10], 27).to_dtype(DType::F32).unwrap();
    let run = |m: &Rnn| {
        let o = m.forward(x32.as_tensor(), None).unwrap();
        let g = (&o.output * &u).unwrap().sum_all().unwrap().backward().unwrap();
        let mut grads = vec![g.get(&x32).unwrap().clone()];
        grads.extend(vm32.all_vars().iter().map(|v| g.get(v).unwrap().clone()));
        (o.output, o.state.c.unwrap(), grads)
    };
    let (of, cf, gf) = run(&fused);
    let (og, cg, gg) = run(&generic);
    assert!(max_diff(&of, &og) < 2e-6, "{}", max_diff(&of, &og));
    assert!(max_diff(&cf, &cg) < 2e-6);
    for (a, b) in gf.iter().zip(&gg) {
        let scale = vals(b).iter().fold(1.0f64, |m, v| m.max(v.abs()));
        assert!(max_diff(a, b) < 1e-5 * scale, "{} (scale {scale})", max_diff(a, b));
    }
}

/// A padded batch gives, on the valid steps and in the final states, the numbers of each
/// sequence run alone; padded outputs are zero.
#[test]
fn masking_equals_unpadded_sequences() {
    let kinds = [
        CellKind::Lstm { peephole: false },
        CellKind::Lstm { peephole: true },
        CellKind::Gru,
        CellKind::RnnTanh,
    ];
    for kind in kinds {
        for batch_first in [false, true] {
            let config = RnnConfig::new(kind, 3, 4)
                .with_layers(2)
                .with_bidirectional(true)
                .with_batch_first(batch_first);
            let (_, layer) = rnn(config, 7);
            let lengths = [5usize, 3, 1, 0];
            let tm = rand_t(&[5, 4, 3], 8); // time-major data
            let x = if batch_first {
                tm.transpose(0, 1).unwrap().contiguous().unwrap()
            } else {
                tm.clone()
            };
            let h0 = rand_t(&[4, 4, 4], 9);
            let c0 = kind.has_cell_state().then(|| rand_t(&[4, 4, 4], 10));
            let state = RnnState { h: h0.clone(), c: c0.clone() };
            let out = layer.forward_masked(&x, Some(&state), Some(&lengths)).unwrap();
            let out_tm =
                if batch_first { out.output.transpose(0, 1).unwrap() } else { out.output.clone() };
            for (n, &len) in lengths.iter().enumerate() {
                let sel = |t: &Tensor| t.narrow(1, n, 1).unwrap();
                let alone_state = RnnState { h: sel(&h0), c: c0.as_ref().map(sel) };
                let (h_n, c_n) = if len == 0 {
                    (alone_state.h.clone(), alone_state.c.clone())
                } else {
                    let xs = tm.narrow(0, 0, len).unwrap().narrow(1, n, 1).unwrap();
                    let xs = if batch_first {
                        xs.transpose(0, 1).unwrap().contiguous().unwrap()
                    } else {
                        xs
                    };
                    let alone = layer.forward(&xs, Some(&alone_state)).unwrap();
                    let alone_tm = if batch_first {
                        alone.output.transpose(0, 1).unwrap()
                    } else {
                        alone.output
                    };
                    let got = out_tm.narrow(0, 0, len).unwrap().narrow(1, n, 1).unwrap();
                    assert!(max_diff(&got, &alone_tm) < 1e-14, "{kind:?} seq {n}");
                    (alone.state.h, alone.state.c)
                };
                assert!(max_diff(&sel(&out.state.h), &h_n) < 1e-14, "{kind:?} h_n seq {n}");
                if let (Some(a), Some(b)) = (&out.state.c, &c_n) {
                    assert!(max_diff(&sel(a), b) < 1e-14, "{kind:?} c_n seq {n}");
                }
                if len < 5 {
                    let pad = out_tm.narrow(0, len, 5 - len).unwrap().narrow(1, n, 1).unwrap();
                    assert!(vals(&pad).iter().all(|&v| v == 0.0), "padded outputs are zero");
                }
            }
        }
    }
}

#[test]
fn lengths_from_prefix_masks() {
    let m = Tensor::new(&[[1u8, 1, 0], [1, 1, 1], [0, 0, 0]], &CPU).unwrap();
    assert_eq!(lengths_from_mask(&m).unwrap(), vec![2, 3, 0]);
    let bad = Tensor::new(&[[1u8, 0, 1]], &CPU).unwrap();
    assert!(err_text(lengths_from_mask(&bad)).contains("not a prefix mask"));
}

#[test]
fn stateful_halves_equal_one_call() {
    for kind in
        [CellKind::Lstm { peephole: false }, CellKind::Gru, CellKind::Lstm { peephole: true }]
    {
        let config = RnnConfig::new(kind, 3, 4).with_layers(2).with_batch_first(true);
        let (_, layer) = rnn(config, 11);
        let x = rand_t(&[2, 6, 3], 12);
        let full = layer.forward(&x, None).unwrap();
        let s = StatefulRnn::new(layer.clone()).unwrap();
        let a = s.forward(&x.narrow(1, 0, 3).unwrap()).unwrap();
        let b = s.forward(&x.narrow(1, 3, 3).unwrap()).unwrap();
        let joined = Tensor::cat(&[&a.output, &b.output], 1).unwrap();
        assert!(max_diff(&joined, &full.output) < 1e-14);
        assert!(max_diff(&b.state.h, &full.state.h) < 1e-14);
        // reset: the next call starts from zeros again.
        s.reset().unwrap();
        assert!(s.state().unwrap().is_none());
        let again = s.forward(&x.narrow(1, 0, 3).unwrap()).unwrap();
        assert!(max_diff(&again.output, &a.output) == 0.0);
        // A changed batch size while a state is carried is a shape error.
        let e = err_text(s.forward(&rand_t(&[3, 2, 3], 1)));
        assert!(e.contains("h0") && e.contains("[2, 2, 4]") && e.contains("(2, 3, 4)"), "{e}");
    }
    let (_, bi) = rnn(RnnConfig::lstm(3, 4).with_bidirectional(true), 1);
    assert!(err_text(StatefulRnn::new(bi)).contains("bidirectional"));
}

#[test]
fn seeded_is_reproducible() {
    let (vm1, _) = rnn(RnnConfig::gru(3, 4), 42);
    let (vm2, _) = rnn(RnnConfig::gru(3, 4), 42);
    let (vm3, _) = rnn(RnnConfig::gru(3, 4), 43);
    let get = |vm: &VarMap| vals(vm.data().lock().unwrap()["rnn.weight_hh_l0"].as_tensor());
    assert_eq!(get(&vm1), get(&vm2));
    assert_ne!(get(&vm1), get(&vm3));
}

#[test]
fn recurrent_bad_input_is_an_error() {
    let (_, layer) = rnn(RnnConfig::lstm(3, 4).with_layers(2), 1);
    let e = err_text(layer.forward(&rand_t(&[5, 3], 1), None));
    assert!(
        e.contains("LSTM")
            && e.contains("input")
            && e.contains("[5, 3]")
            && e.contains("input_size = 3"),
        "{e}"
    );
    let e = err_text(layer.forward(&rand_t(&[5, 2, 7], 1), None));
    assert!(e.contains("[5, 2, 7]") && e.contains("(T, N, input_size)"), "{e}");
    let x = rand_t(&[5, 2, 3], 1);
    let bad_h = RnnState { h: rand_t(&[1, 2, 4], 1), c: Some(rand_t(&[2, 2, 4], 1)) };
    let e = err_text(layer.forward(&x, Some(&bad_h)));
    assert!(e.contains("h0") && e.contains("[1, 2, 4]") && e.contains("(2, 2, 4)"), "{e}");
    let no_c = RnnState { h: rand_t(&[2, 2, 4], 1), c: None };
    assert!(err_text(layer.forward(&x, Some(&no_c))).contains("no c0"));
    let bad_c = RnnState { h: rand_t(&[2, 2, 4], 1), c: Some(rand_t(&[2, 3, 4], 1)) };
    assert!(err_text(layer.forward(&x, Some(&bad_c))).contains("c0"));
    let e = err_text(layer.forward_masked(&x, None, Some(&[5])));
    assert!(e.contains("1 sequence lengths for a batch of 2"), "{e}");
    let e = err_text(layer.forward_masked(&x, None, Some(&[5, 6])));
    assert!(e.contains("lengths[1] = 6") && e.contains("5 input steps"), "{e}");
    let e = err_text(layer.forward(&x.to_dtype(DType::F32).unwrap(), None));
    assert!(e.contains("F32"), "{e}");
    let (_, gru) = rnn(RnnConfig::gru(3, 4), 1);
    let with_c = RnnState { h: rand_t(&[1, 2, 4], 1), c: Some(rand_t(&[1, 2, 4], 1)) };
    assert!(err_text(gru.forward(&x, Some(&with_c))).contains("only an LSTM"));
    let vm = VarMap::new();
    let e = err_text(Rnn::seeded(RnnConfig::gru(0, 4), &vm, "", DType::F64, &CPU, 0));
    assert!(e.contains("GRU") && e.contains("input_size"), "{e}");
}

// ---------------------------------------------------------------- WaveNet

#[test]
fn dilated_causal_conv_is_causal_with_the_right_receptive_field() {
    let config = DilatedCausalConvConfig::new(2, 3, 2, 3);
    assert_eq!(config.receptive_field(), 8);
    let vm = VarMap::new();
    let layer = DilatedCausalConv::seeded(config, &vm, "wn", DType::F64, &CPU, 3).unwrap();
    let x = rand_t(&[2, 2, 20], 4);
    let y = layer.forward(&x).unwrap();
    assert_eq!(y.dims(), [2, 3, 20]);
    // Perturb input step 10: outputs before 10 are untouched, those in 10..10+8 change.
    let mut v = vals(&x);
    v[10] += 1.0; // sequence 0, channel 0, step 10
    let y2 = layer.forward(&Tensor::from_vec(v, (2, 2, 20), &CPU).unwrap()).unwrap();
    let d: Vec<f64> =
        vals(&(y2 - &y).unwrap().narrow(0, 0, 1).unwrap().sum(1).unwrap().abs().unwrap());
    assert!(d[..10].iter().all(|&v| v == 0.0), "{d:?}");
    assert!(d[10] > 0.0 && d[17] > 0.0, "{d:?}");
    // The same numbers as candle's conv1d forward with left padding, layer by layer.
    let data = vm.data().lock().unwrap();
    let mut h = x.clone();
    for l in 0..3 {
        let w = data[&format!("wn.layers.{l}.weight")].as_tensor().clone();
        let b = data[&format!("wn.layers.{l}.bias")].as_tensor().clone();
        let d = 1 << l;
        h = h.pad_with_zeros(2, d, 0).unwrap().conv1d(&w, 0, 1, d, 1).unwrap();
        h = h.broadcast_add(&b.reshape((1, 3, 1)).unwrap()).unwrap();
        if l < 2 {
            h = h.relu().unwrap();
        }
    }
    drop(data);
    assert!(max_diff(&h, &y) < 1e-14);
    // ReLU kinks are almost surely avoided by random inputs and a small step.
    let xv = rand_var(&[2, 2, 9], 5);
    gradcheck(&vm, &[&xv], || layer.forward(xv.as_tensor()));
    let e = err_text(layer.forward(&rand_t(&[2, 3, 9], 1)));
    assert!(
        e.contains("dilated causal conv") && e.contains("[2, 3, 9]") && e.contains("(N, 2, T)"),
        "{e}"
    );
}

// ---------------------------------------------------------------- attention

fn key_mask() -> Tensor {
    Tensor::new(&[[1u8, 1, 1, 0], [1, 0, 1, 1]], &CPU).unwrap()
}

fn check_weights(weights: &Tensor, mask: &Tensor) {
    let (n, tq, tk) = weights.dims3().unwrap();
    let w = vals(weights);
    let m = vals(mask);
    for i in 0..n {
        for q in 0..tq {
            let row = &w[(i * tq + q) * tk..(i * tq + q + 1) * tk];
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for k in 0..tk {
                if m[i * tk + k] == 0.0 {
                    assert_eq!(row[k], 0.0);
                } else {
                    assert!(row[k] > 0.0);
                }
            }
        }
    }
}

#[test]
fn additive_attention() {
    let vm = VarMap::new();
    let att = AdditiveAttention::seeded(3, 5, 4, true, &vm, "att", DType::F64, &CPU, 1).unwrap();
    let (q, k, v) = (rand_var(&[2, 3, 3], 2), rand_var(&[2, 4, 5], 3), rand_var(&[2, 4, 6], 4));
    let mask = key_mask();
    let out = att.forward(q.as_tensor(), k.as_tensor(), Some(v.as_tensor()), Some(&mask)).unwrap();
    assert_eq!(out.context.dims(), [2, 3, 6]);
    assert_eq!(out.weights.dims(), [2, 3, 4]);
    check_weights(&out.weights, &mask);
    // The score is v^T tanh(W_q h + W_k y + b), checked for one pair by hand.
    let data = vm.data().lock().unwrap();
    let w_q = data["att.w_query"].as_tensor().clone();
    let w_k = data["att.w_key"].as_tensor().clone();
    let b = data["att.bias"].as_tensor().clone();
    let vv = data["att.v"].as_tensor().clone();
    drop(data);
    let h = q.as_tensor().get(1).unwrap().get(2).unwrap();
    let y = k.as_tensor().get(1).unwrap().get(3).unwrap();
    let pre = (w_q.matmul(&h.unsqueeze(1).unwrap()).unwrap()
        + w_k.matmul(&y.unsqueeze(1).unwrap()).unwrap())
    .unwrap();
    let hand =
        (pre.squeeze(1).unwrap() + b).unwrap().tanh().unwrap().mul(&vv).unwrap().sum_all().unwrap();
    let scores = att.scores(q.as_tensor(), k.as_tensor()).unwrap();
    let got = scores.get(1).unwrap().get(2).unwrap().get(3).unwrap();
    assert!((hand.to_scalar::<f64>().unwrap() - got.to_scalar::<f64>().unwrap()).abs() < 1e-14);
    gradcheck(&vm, &[&q, &k, &v], || {
        let o = att.forward(q.as_tensor(), k.as_tensor(), Some(v.as_tensor()), Some(&mask))?;
        Tensor::cat(&[o.context.flatten_all()?, o.weights.flatten_all()?], 0)
    });
    let e = err_text(att.forward(&rand_t(&[2, 3, 4], 1), k.as_tensor(), None, None));
    assert!(
        e.contains("additive attention") && e.contains("query") && e.contains("(N, Tq, 3)"),
        "{e}"
    );
    let e = err_text(att.forward(q.as_tensor(), &rand_t(&[3, 4, 5], 1), None, None));
    assert!(e.contains("keys") && e.contains("(2, Tk, 5)"), "{e}");
}

#[test]
fn dot_and_general_attention() {
    let (q, k, v) = (rand_var(&[2, 3, 5], 2), rand_var(&[2, 4, 5], 3), rand_var(&[2, 4, 2], 4));
    let mask = key_mask();
    for scaled in [false, true] {
        let att = DotAttention::new(scaled);
        let out =
            att.forward(q.as_tensor(), k.as_tensor(), Some(v.as_tensor()), Some(&mask)).unwrap();
        assert_eq!(out.context.dims(), [2, 3, 2]);
        check_weights(&out.weights, &mask);
        // Unmasked: the softmax of q k^T (/ sqrt(5)) computed by hand for one row.
        let o = att.forward(q.as_tensor(), k.as_tensor(), None, None).unwrap();
        let qr = vals(&q.as_tensor().get(0).unwrap().get(1).unwrap());
        let scale = if scaled { 5f64.sqrt() } else { 1.0 };
        let s: Vec<f64> = (0..4)
            .map(|j| {
                let kr = vals(&k.as_tensor().get(0).unwrap().get(j).unwrap());
                qr.iter().zip(&kr).map(|(a, b)| a * b).sum::<f64>() / scale
            })
            .collect();
        let z: f64 = s.iter().map(|x| x.exp()).sum();
        let w = vals(&o.weights.get(0).unwrap().get(1).unwrap());
        for j in 0..4 {
            assert!((w[j] - s[j].exp() / z).abs() < 1e-14);
        }
        let vm = VarMap::new();
        gradcheck(&vm, &[&q, &k, &v], || {
            let o = att.forward(q.as_tensor(), k.as_tensor(), Some(v.as_tensor()), Some(&mask))?;
            Tensor::cat(&[o.context.flatten_all()?, o.weights.flatten_all()?], 0)
        });
    }
    let vm = VarMap::new();
    let gen = GeneralAttention::seeded(5, 3, &vm, "g", DType::F64, &CPU, 1).unwrap();
    let kg = rand_var(&[2, 4, 3], 5);
    let out = gen.forward(q.as_tensor(), kg.as_tensor(), None, Some(&mask)).unwrap();
    assert_eq!(out.context.dims(), [2, 3, 3]);
    check_weights(&out.weights, &mask);
    gradcheck(&vm, &[&q, &kg], || {
        let o = gen.forward(q.as_tensor(), kg.as_tensor(), None, Some(&mask))?;
        Tensor::cat(&[o.context.flatten_all()?, o.weights.flatten_all()?], 0)
    });
    // Errors: feature mismatch, mask shape, fully masked row.
    let e = err_text(DotAttention::new(false).forward(q.as_tensor(), kg.as_tensor(), None, None));
    assert!(e.contains("dot attention") && e.contains("keys") && e.contains("[2, 4, 3]"), "{e}");
    let e = err_text(gen.forward(q.as_tensor(), kg.as_tensor(), None, Some(&rand_t(&[2, 5], 1))));
    assert!(e.contains("mask") && e.contains("(2, 4)") && e.contains("[2, 5]"), "{e}");
    let dead = Tensor::new(&[[1u8, 1, 1, 1], [0, 0, 0, 0]], &CPU).unwrap();
    let e = err_text(gen.forward(q.as_tensor(), kg.as_tensor(), None, Some(&dead)));
    assert!(e.contains("every key is masked") && e.contains("sequence 1"), "{e}");
    let e = err_text(gen.forward(
        q.as_tensor(),
        &rand_t(&[2, 4, 3], 1),
        Some(&rand_t(&[2, 3, 3], 1)),
        None,
    ));
    assert!(e.contains("values"), "{e}");
}

fn mha(config: MultiHeadAttentionConfig, seed: u64) -> (VarMap, MultiHeadAttention) {
    let vm = VarMap::new();
    let m = MultiHeadAttention::seeded(config, &vm, "mha", DType::F64, &CPU, seed).unwrap();
    // torch initialises the biases to zero; random ones test the bias paths too.
    for (name, var) in vm.data().lock().unwrap().iter() {
        if name.ends_with("bias") {
            var.set(&rand_t(var.dims(), 77)).unwrap();
        }
    }
    (vm, m)
}

#[test]
fn multi_head_attention() {
    let (vm, m) = mha(MultiHeadAttentionConfig::new(4, 2), 1);
    let names: Vec<String> = vm.data().lock().unwrap().keys().cloned().collect();
    for n in ["mha.in_proj_weight", "mha.in_proj_bias", "mha.out_proj.weight", "mha.out_proj.bias"]
    {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    let q = rand_var(&[3, 2, 4], 2); // (L, N, E)
    let kv = rand_var(&[5, 2, 4], 3); // (S, N, E)
    let kpm = Tensor::new(&[[0u8, 0, 0, 1, 1], [0, 1, 0, 0, 0]], &CPU).unwrap();
    let attn_mask = rand_t(&[3, 5], 8); // float, added
    let (out, w) = m
        .forward_t(
            q.as_tensor(),
            kv.as_tensor(),
            kv.as_tensor(),
            Some(&kpm),
            Some(&attn_mask),
            false,
        )
        .unwrap();
    assert_eq!(out.dims(), [3, 2, 4]);
    assert_eq!(w.dims(), [2, 3, 5]);
    check_weights(&w, &(1.0 - kpm.to_dtype(DType::F64).unwrap()).unwrap());
    gradcheck(&vm, &[&q, &kv], || {
        let (o, w) = m.forward_t(
            q.as_tensor(),
            kv.as_tensor(),
            kv.as_tensor(),
            Some(&kpm),
            Some(&attn_mask),
            false,
        )?;
        Tensor::cat(&[o.flatten_all()?, w.flatten_all()?], 0)
    });
    // batch_first on the same weights is the transposed computation.
    let vb = candle_nn::VarBuilder::from_varmap(&vm, DType::F64, &CPU).pp("mha");
    let mut cfg = MultiHeadAttentionConfig::new(4, 2);
    cfg.batch_first = true;
    let mb = MultiHeadAttention::load(cfg, vb, 0).unwrap();
    let t = |x: &Var| x.as_tensor().transpose(0, 1).unwrap().contiguous().unwrap();
    let (out_b, w_b) =
        mb.forward_t(&t(&q), &t(&kv), &t(&kv), Some(&kpm), Some(&attn_mask), false).unwrap();
    assert!(max_diff(&out_b.transpose(0, 1).unwrap(), &out) < 1e-14);
    assert!(max_diff(&w_b, &w) < 1e-14);
    // One head equals scaled dot attention on the projected q, k, v, then out_proj.
    let (vm1, m1) = mha(MultiHeadAttentionConfig::new(4, 1), 4);
    let d = vm1.data().lock().unwrap();
    let (wi, bi) =
        (d["mha.in_proj_weight"].as_tensor().clone(), d["mha.in_proj_bias"].as_tensor().clone());
    let (wo, bo) =
        (d["mha.out_proj.weight"].as_tensor().clone(), d["mha.out_proj.bias"].as_tensor().clone());
    drop(d);
    let bm = t(&q); // (N, L, E)
    let bkv = t(&kv);
    let proj = |x: &Tensor, i: usize| {
        x.broadcast_matmul(&wi.narrow(0, 4 * i, 4).unwrap().t().unwrap())
            .unwrap()
            .broadcast_add(&bi.narrow(0, 4 * i, 4).unwrap())
            .unwrap()
    };
    let a = DotAttention::new(true)
        .forward(&proj(&bm, 0), &proj(&bkv, 1), Some(&proj(&bkv, 2)), None)
        .unwrap();
    let hand = a.context.broadcast_matmul(&wo.t().unwrap()).unwrap().broadcast_add(&bo).unwrap();
    let (o1, w1) =
        m1.forward_t(q.as_tensor(), kv.as_tensor(), kv.as_tensor(), None, None, false).unwrap();
    assert!(max_diff(&o1.transpose(0, 1).unwrap(), &hand) < 1e-13);
    assert!(max_diff(&w1, &a.weights) < 1e-13);
    // Dropout: deterministic for one seed, off in evaluation.
    let mut cfg = MultiHeadAttentionConfig::new(4, 2);
    cfg.dropout = 0.5;
    let run = |seed| {
        let (_, md) = mha(cfg, seed);
        let train = md
            .forward_t(q.as_tensor(), kv.as_tensor(), kv.as_tensor(), None, None, true)
            .unwrap()
            .0;
        let eval = md
            .forward_t(q.as_tensor(), kv.as_tensor(), kv.as_tensor(), None, None, false)
            .unwrap()
            .0;
        (vals(&train), vals(&eval))
    };
    let (a1, e1) = run(9);
    let (a2, e2) = run(9);
    assert_eq!((&a1, &e1), (&a2, &e2));
    assert_ne!(a1, e1);
    // Errors.
    let e = err_text(m.forward_t(
        &rand_t(&[3, 2, 5], 1),
        kv.as_tensor(),
        kv.as_tensor(),
        None,
        None,
        false,
    ));
    assert!(
        e.contains("multi-head attention")
            && e.contains("query")
            && e.contains("E = 4")
            && e.contains("[3, 2, 5]"),
        "{e}"
    );
    let e = err_text(m.forward_t(
        q.as_tensor(),
        &rand_t(&[5, 3, 4], 1),
        kv.as_tensor(),
        None,
        None,
        false,
    ));
    assert!(e.contains("key") && e.contains("N = 2"), "{e}");
    let e = err_text(m.forward_t(
        q.as_tensor(),
        kv.as_tensor(),
        kv.as_tensor(),
        Some(&rand_t(&[2, 4], 1)),
        None,
        false,
    ));
    assert!(e.contains("key_padding_mask") && e.contains("(2, 5)"), "{e}");
    let e = err_text(m.forward_t(
        q.as_tensor(),
        kv.as_tensor(),
        kv.as_tensor(),
        None,
        Some(&rand_t(&[5, 3], 1)),
        false,
    ));
    assert!(e.contains("attn_mask") && e.contains("(3, 5)"), "{e}");
    let all = Tensor::ones((2, 5), DType::U8, &CPU).unwrap();
    assert!(err_text(m.forward_t(
        q.as_tensor(),
        kv.as_tensor(),
        kv.as_tensor(),
        Some(&all),
        None,
        false
    ))
    .contains("every key is masked"));
    let vm = VarMap::new();
    assert!(err_text(MultiHeadAttention::seeded(
        MultiHeadAttentionConfig::new(5, 2),
        &vm,
        "",
        DType::F64,
        &CPU,
        0
    ))
    .contains("num_heads"));
}

fn small_transformer() -> TransformerConfig {
    let mut c = TransformerConfig::new(4, 2);
    c.dim_feedforward = 6;
    c
}

#[test]
fn transformer_encoder_layer() {
    for norm_first in [false, true] {
        let mut c = small_transformer();
        c.norm_first = norm_first;
        let vm = VarMap::new();
        let enc = TransformerEncoderLayer::seeded(c, &vm, "enc", DType::F64, &CPU, 1).unwrap();
        let names: Vec<String> = vm.data().lock().unwrap().keys().cloned().collect();
        for n in [
            "enc.self_attn.in_proj_weight",
            "enc.linear1.weight",
            "enc.linear2.bias",
            "enc.norm2.weight",
        ] {
            assert!(names.contains(&n.to_string()), "{names:?}");
        }
        let x = rand_var(&[3, 2, 4], 2);
        let kpm = Tensor::new(&[[0u8, 0, 1], [0, 0, 0]], &CPU).unwrap();
        let masks = EncoderMasks { src_key_padding_mask: Some(&kpm), src_mask: None };
        let y = enc.forward_t(x.as_tensor(), masks, false).unwrap();
        assert_eq!(y.dims(), [3, 2, 4]);
        if !norm_first {
            // Post-norm: every output vector is normalised (mean 0, variance 1 before the
            // affine, which is the identity at initialisation).
            let v = vals(&y);
            for row in v.chunks(4) {
                let mean = row.iter().sum::<f64>() / 4.0;
                let var = row.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
                assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-4, "{row:?}");
            }
        }
        // Random affine parameters for the layer norms, then the gradient check (eval mode).
        for (name, var) in vm.data().lock().unwrap().iter() {
            if name.contains("norm") || name.ends_with("in_proj_bias") {
                var.set(&rand_t(var.dims(), 5).affine(0.5, 1.0).unwrap()).unwrap();
            }
        }
        gradcheck(&vm, &[&x], || enc.forward_t(x.as_tensor(), masks, false));
        // Dropout in training is reproducible and differs from evaluation.
        let vm2 = VarMap::new();
        let enc2 = TransformerEncoderLayer::seeded(c, &vm2, "enc", DType::F64, &CPU, 1).unwrap();
        let vm3 = VarMap::new();
        let enc3 = TransformerEncoderLayer::seeded(c, &vm3, "enc", DType::F64, &CPU, 1).unwrap();
        let t2 = enc2.forward_t(x.as_tensor(), masks, true).unwrap();
        let t3 = enc3.forward_t(x.as_tensor(), masks, true).unwrap();
        assert_eq!(vals(&t2), vals(&t3));
        assert_ne!(vals(&t2), vals(&enc2.forward_t(x.as_tensor(), masks, false).unwrap()));
        let e = err_text(enc.forward_t(&rand_t(&[3, 2, 5], 1), masks, false));
        assert!(
            e.contains("transformer encoder layer")
                && e.contains("src")
                && e.contains("d_model = 4"),
            "{e}"
        );
    }
}

#[test]
fn transformer_decoder_layer_is_causal() {
    let mut c = small_transformer();
    c.batch_first = true;
    let vm = VarMap::new();
    let dec = TransformerDecoderLayer::seeded(c, &vm, "dec", DType::F64, &CPU, 2).unwrap();
    assert!(vm.data().lock().unwrap().contains_key("dec.multihead_attn.out_proj.weight"));
    assert!(vm.data().lock().unwrap().contains_key("dec.norm3.bias"));
    let tgt = rand_var(&[2, 5, 4], 3);
    let mem = rand_var(&[2, 3, 4], 4);
    let masks = DecoderMasks { tgt_is_causal: true, ..Default::default() };
    let y = dec.forward_t(tgt.as_tensor(), mem.as_tensor(), masks, false).unwrap();
    assert_eq!(y.dims(), [2, 5, 4]);
    // Changing target step 3 leaves steps 0..3 unchanged under the causal mask.
    let mut v = vals(tgt.as_tensor());
    for j in 0..4 {
        v[3 * 4 + j] += 0.5;
    }
    let y2 = dec
        .forward_t(&Tensor::from_vec(v, (2, 5, 4), &CPU).unwrap(), mem.as_tensor(), masks, false)
        .unwrap();
    let diff = (y2 - &y).unwrap().abs().unwrap().sum(2).unwrap();
    let d0 = vals(&diff.get(0).unwrap());
    assert!(d0[..3].iter().all(|&d| d == 0.0) && d0[3] > 0.0, "{d0:?}");
    // The explicit causal mask gives the same numbers as tgt_is_causal.
    let cm = causal_mask(5, &CPU).unwrap();
    let explicit = DecoderMasks { tgt_mask: Some(&cm), ..Default::default() };
    let y3 = dec.forward_t(tgt.as_tensor(), mem.as_tensor(), explicit, false).unwrap();
    assert!(max_diff(&y3, &y) < 1e-14);
    for (name, var) in vm.data().lock().unwrap().iter() {
        if name.contains("norm") || name.ends_with("in_proj_bias") {
            var.set(&rand_t(var.dims(), 6).affine(0.5, 1.0).unwrap()).unwrap();
        }
    }
    let mkpm = Tensor::new(&[[0u8, 0, 1], [0, 0, 0]], &CPU).unwrap();
    let masks = DecoderMasks {
        tgt_is_causal: true,
        memory_key_padding_mask: Some(&mkpm),
        ..Default::default()
    };
    gradcheck(&vm, &[&tgt, &mem], || dec.forward_t(tgt.as_tensor(), mem.as_tensor(), masks, false));
    let e = err_text(dec.forward_t(tgt.as_tensor(), &rand_t(&[2, 3], 1), masks, false));
    assert!(e.contains("memory") && e.contains("[2, 3]"), "{e}");
}

#[test]
fn positional_encoding() {
    let pe = SinusoidalPositionalEncoding::new(10, 5, false, DType::F64, &CPU).unwrap();
    let table = pe.encodings(10).unwrap();
    assert_eq!(table.dims(), [10, 5]);
    let t = vals(&table);
    assert_eq!(&t[..5], &[0.0, 1.0, 0.0, 1.0, 0.0]); // position 0: sin 0, cos 0
    let (pos, j) = (7usize, 3usize); // odd column: cos(pos / 10000^(2/5))
    assert!((t[pos * 5 + j] - (pos as f64 / 10000f64.powf(2.0 / 5.0)).cos()).abs() < 1e-15);
    let x = rand_var(&[4, 2, 5], 1);
    let y = pe.forward(x.as_tensor()).unwrap();
    assert_eq!(y.dims(), [4, 2, 5]);
    let d = (y - x.as_tensor()).unwrap();
    assert!(max_diff(&d.get(3).unwrap().get(1).unwrap(), &table.get(3).unwrap()) < 1e-15);
    gradcheck(&VarMap::new(), &[&x], || pe.forward(x.as_tensor()));
    let bf = SinusoidalPositionalEncoding::new(10, 5, true, DType::F32, &CPU).unwrap();
    assert_eq!(
        bf.forward(&Tensor::zeros((2, 4, 5), DType::F32, &CPU).unwrap()).unwrap().dims(),
        [2, 4, 5]
    );
    assert!(err_text(pe.forward(&rand_t(&[11, 2, 5], 1))).contains("exceeds max_len 10"));
    assert!(err_text(pe.forward(&rand_t(&[4, 2, 6], 1))).contains("d_model = 5"));
}

#[test]
fn embedding() {
    let vm = VarMap::new();
    let emb = Embedding::seeded(6, 3, Some(0), &vm, "emb", DType::F64, &CPU, 1).unwrap();
    let ids = Tensor::new(&[[1u32, 0, 5], [5, 2, 2]], &CPU).unwrap();
    let y = emb.forward(&ids).unwrap();
    assert_eq!(y.dims(), [2, 3, 3]);
    assert_eq!(vals(&y.get(0).unwrap().get(1).unwrap()), vec![0.0; 3]); // padding row is zero
    assert_eq!(vals(&y.get(1).unwrap().get(0).unwrap()), vals(&emb.weight().get(5).unwrap()));
    // (Ids without the padding row, whose gradient is zero by design.)
    let ids_no_pad = Tensor::new(&[[1u32, 3, 5], [5, 2, 2]], &CPU).unwrap();
    gradcheck(&vm, &[], || emb.forward(&ids_no_pad));
    // The padding row gets no gradient even where it is used.
    let w = vm.all_vars().remove(0);
    let g = (emb.forward(&ids).unwrap() * rand_t(&[2, 3, 3], 3))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = vals(&g.get(&w).unwrap().get(0).unwrap());
    assert_eq!(g, vec![0.0; 3]);
    let e = err_text(emb.forward(&Tensor::new(&[1i64, 6], &CPU).unwrap()));
    assert!(e.contains("embedding") && e.contains("id 6") && e.contains("0..6"), "{e}");
    assert!(err_text(emb.forward(&Tensor::new(&[-1i64], &CPU).unwrap())).contains("id -1"));
    assert!(err_text(emb.forward(&rand_t(&[2], 1))).contains("integers"));
}
