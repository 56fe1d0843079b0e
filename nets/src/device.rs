//! Choosing a candle device by name, as the command line and the tests' `DEEPRL_TEST_DEVICE`
//! spell it.

use candle_core::{Device, Result};

/// The device called `name`: `cpu`, or `cuda` (GPU 0; needs a build with the `cuda` feature
/// and a CUDA driver). Any other name, or a CUDA device that cannot be opened, is an error
/// that says so.
pub fn device_by_name(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(0).map_err(|e| {
            candle_core::Error::Msg(format!(
                "cannot use cuda: {e} (build with `--features cuda` on a machine with CUDA)"
            ))
        }),
        other => Err(candle_core::Error::Msg(format!("unknown device `{other}`: use cpu or cuda"))),
    }
}

#[cfg(test)]
mod tests {
    use super::device_by_name;

    #[test]
    fn names_the_devices_and_the_mistakes() {
        assert!(device_by_name("cpu").unwrap().is_cpu());
        let err = device_by_name("tpu").unwrap_err().to_string();
        assert!(err.contains("unknown device `tpu`"), "{err}");
        #[cfg(not(feature = "cuda"))]
        {
            let err = device_by_name("cuda").unwrap_err().to_string();
            assert!(err.contains("cannot use cuda") && err.contains("--features cuda"), "{err}");
        }
    }
}
