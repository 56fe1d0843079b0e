//! Choosing a candle device by name, as the command line and the tests' `DEEPRL_TEST_DEVICE`
//! spell it.

use std::sync::OnceLock;

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

/// The device named by `$DEEPRL_TEST_DEVICE` (`cpu` when unset), opened once per process:
/// the tests that also run on a GPU take their device from here, since tensors made on two
/// separately opened CUDA devices cannot meet in one op.
pub fn test_device() -> Result<Device> {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    if let Some(device) = DEVICE.get() {
        return Ok(device.clone());
    }
    let name = std::env::var("DEEPRL_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = device_by_name(&name)
        .map_err(|e| candle_core::Error::Msg(format!("DEEPRL_TEST_DEVICE: {e}")))?;
    Ok(DEVICE.get_or_init(|| device).clone())
}

#[cfg(test)]
mod tests {
    use super::{device_by_name, test_device};

    #[test]
    fn names_the_devices_and_the_mistakes() {
        assert!(device_by_name("cpu").unwrap().is_cpu());
        if std::env::var_os("DEEPRL_TEST_DEVICE").is_none() {
            assert!(test_device().unwrap().is_cpu());
        }
        let err = device_by_name("tpu").unwrap_err().to_string();
        assert!(err.contains("unknown device `tpu`"), "{err}");
        #[cfg(not(feature = "cuda"))]
        {
            let err = device_by_name("cuda").unwrap_err().to_string();
            assert!(err.contains("cannot use cuda") && err.contains("--features cuda"), "{err}");
        }
    }
}
