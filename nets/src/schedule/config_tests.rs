use super::*;
use crate::schedule::{AnnealStrategy, PlateauMode, ScheduleError, ThresholdMode};

fn parse(json: &str) -> std::result::Result<ScheduleConfig, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn defaults_are_torchs() {
    let c = parse(r#"{"kind": "one_cycle", "max_lr": 0.1, "total_steps": 1000}"#).unwrap();
    assert_eq!(c, ScheduleConfig::OneCycle(OneCycleConfig::new(0.1, 1000)));
    let ScheduleConfig::OneCycle(o) = c else { unreachable!() };
    assert_eq!(
        (o.pct_start, o.anneal_strategy, o.cycle_momentum),
        (0.3, AnnealStrategy::Cos, true)
    );
    assert_eq!((o.base_momentum, o.max_momentum), (0.85, 0.95));
    assert_eq!((o.div_factor, o.final_div_factor, o.three_phase), (25.0, 1e4, false));

    let c = parse(r#"{"kind": "reduce_on_plateau", "lr": 0.01}"#).unwrap();
    let ScheduleConfig::ReduceOnPlateau(p) = c else { unreachable!() };
    assert_eq!(p, PlateauConfig { lr: 0.01, ..PlateauConfig::default() });
    assert_eq!((p.mode, p.factor, p.patience, p.threshold), (PlateauMode::Min, 0.1, 10, 1e-4));
    assert_eq!((p.threshold_mode, p.cooldown, p.min_lr, p.eps), (ThresholdMode::Rel, 0, 0.0, 1e-8));

    let c = parse(r#"{"kind": "step", "lr": 1.0, "step_size": 3}"#).unwrap();
    assert_eq!(c, ScheduleConfig::Step { lr: 1.0, step_size: 3, gamma: 0.1 });
    let c = parse(r#"{"kind": "power", "eta0": 1.0, "s": 3}"#).unwrap();
    assert_eq!(c, ScheduleConfig::Power { eta0: 1.0, s: 3.0, c: 1.0 });
}

#[test]
fn round_trips_through_json() {
    let configs = [
        ScheduleConfig::Linear { start: 1.0, end: 0.05, steps: 100 },
        ScheduleConfig::MultiStep { lr: 0.1, milestones: vec![3, 3, 7], gamma: 0.5 },
        ScheduleConfig::OneCycle(OneCycleConfig::new(0.1, 10)),
        ScheduleConfig::ReduceOnPlateau(PlateauConfig::default()),
    ];
    for c in configs {
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(parse(&json).unwrap(), c, "{json}");
    }
}

#[test]
fn parse_errors() {
    let e = parse(r#"{"kind": "reduce_on_plateau", "lr": 0.1, "mode": "minimum"}"#).unwrap_err();
    assert!(e.to_string().contains("minimum"), "{e}");
    let e = parse(
        r#"{"kind": "one_cycle", "max_lr": 0.1, "total_steps": 9, "anneal_strategy": "cosine"}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("cosine"), "{e}");
    let e = parse(r#"{"kind": "step", "lr": 1.0, "step_size": 3, "gama": 0.5}"#).unwrap_err();
    assert!(e.to_string().contains("gama"), "{e}");
    let e =
        parse(r#"{"kind": "one_cycle", "max_lr": 0.1, "total_steps": 9, "pct": 0.5}"#).unwrap_err();
    assert!(e.to_string().contains("pct"), "{e}");
    assert!(parse(r#"{"kind": "cosine_annealing", "lr": 1.0}"#).is_err());
    assert!(parse(r#"{"kind": "step", "lr": 1.0, "step_size": -3}"#).is_err());
}

#[test]
fn build_validates() {
    let bad = [
        (ScheduleConfig::Step { lr: 1.0, step_size: 0, gamma: 0.1 }, "step_size"),
        (ScheduleConfig::OneCycle(OneCycleConfig::new(0.1, 0)), "total_steps"),
        (ScheduleConfig::Exponential { lr: -1.0, gamma: 0.9 }, "lr"),
        (
            ScheduleConfig::ReduceOnPlateau(PlateauConfig { factor: 2.0, ..Default::default() }),
            "factor",
        ),
    ];
    for (c, want) in bad {
        match c.build() {
            Err(ScheduleError::InvalidParameter { field, .. }) => assert_eq!(field, want),
            other => panic!("{c:?}: {other:?}"),
        }
    }
}

#[test]
fn scheduler_drives_both_kinds() {
    let c = ScheduleConfig::Step { lr: 1.0, step_size: 2, gamma: 0.5 };
    let mut s = c.build().unwrap();
    s.observe(3.0); // no-op
    assert_eq!((s.value(0), s.value(2), s.momentum(2)), (1.0, 0.5, None));
    assert!(!s.is_metric_driven());

    let config = PlateauConfig { lr: 1.0, factor: 0.5, patience: 0, ..Default::default() };
    let mut s = ScheduleConfig::ReduceOnPlateau(config).build().unwrap();
    assert!(s.is_metric_driven());
    s.observe(1.0);
    assert_eq!(s.value(1), 1.0);
    s.observe(2.0);
    assert_eq!(s.value(2), 0.5);
    assert_eq!(s.momentum(2), None);

    let s = ScheduleConfig::OneCycle(OneCycleConfig::new(1.0, 100)).build().unwrap();
    assert_eq!(s.momentum(0), Some(0.95));
}
