//! A user env: implement `Env`, register it, check it, play it (`cargo run --example custom_env`).
use deeprl::envs::{check_discrete, check_env, make, register_spec, ActionRef};
use deeprl::envs::{Env, EnvSpec, Result, Space, Step};

/// Walk from cell 0 to the last of `len` cells; -1 per step, 0 on arrival.
struct Corridor {
    len: usize,
    pos: usize,
}

impl Env for Corridor {
    type Obs = [f32; 1];
    type Action = usize; // 0 = left, 1 = right
    fn observation_space(&self) -> Space {
        Space::boxed(vec![0.0], vec![1.0])
    }
    fn action_space(&self) -> Space {
        Space::discrete(2)
    }
    fn reset(&mut self, _seed: Option<u64>) -> [f32; 1] {
        self.pos = 0;
        [0.0]
    }
    fn step(&mut self, action: &usize) -> Result<Step<[f32; 1]>> {
        check_discrete(*action, 2)?;
        self.pos = if *action == 1 { self.pos + 1 } else { self.pos.saturating_sub(1) };
        let terminated = self.pos == self.len - 1;
        let obs = [self.pos as f32 / (self.len - 1) as f32];
        let reward = if terminated { 0.0 } else { -1.0 };
        Ok(Step { obs, reward, terminated, truncated: false })
    }
}

fn main() -> anyhow::Result<()> {
    register_spec(EnvSpec::new("Corridor-v0").with_time_limit(50), || Corridor { len: 6, pos: 0 })?;
    println!("check_env: {}", check_env(|| make("Corridor-v0").expect("registered")));
    let (mut env, mut obs) = (make("Corridor-v0")?, [0.0]);
    env.reset_into(Some(0), &mut obs)?;
    let (mut ret, mut steps) = (0.0, 0);
    loop {
        let out = env.step_into(ActionRef::Discrete(1), &mut obs)?;
        (ret, steps) = (ret + out.reward, steps + 1);
        if out.done() {
            break;
        }
    }
    println!("always right: return {ret} in {steps} steps, final obs {obs:?}");
    Ok(())
}
