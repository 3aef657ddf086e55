//! Picking the compute device: wgpu when it finds an adapter, otherwise burn-flex on the CPU.
use anyhow::{bail, Result};
use r2unet::burn::tensor::Device;

use crate::args::BackendArg;

pub struct Chosen {
    pub device: Device,
    pub name: &'static str,
}

fn try_wgpu() -> std::result::Result<Device, String> {
    // Adapter discovery can panic inside some drivers; treat that as "no adapter".
    let result = std::panic::catch_unwind(|| Device::wgpu_options().init());
    match result {
        Ok(Ok(device)) => Ok(device),
        Ok(Err(e)) => Err(format!("{e}")),
        Err(_) => Err("adapter initialisation panicked".into()),
    }
}

/// Resolves `--backend` and says on stderr which one runs.
pub fn choose(arg: BackendArg) -> Result<Chosen> {
    let chosen = match arg {
        BackendArg::Flex => Chosen { device: Device::flex(), name: "flex" },
        BackendArg::Wgpu => match try_wgpu() {
            Ok(device) => Chosen { device, name: "wgpu" },
            Err(e) => bail!("--backend wgpu: no usable GPU adapter ({e})"),
        },
        BackendArg::Auto => match try_wgpu() {
            Ok(device) => Chosen { device, name: "wgpu" },
            Err(e) => {
                eprintln!("backend: no wgpu adapter ({e}); using flex (CPU)");
                Chosen { device: Device::flex(), name: "flex" }
            }
        },
    };
    eprintln!("backend: {}", chosen.name);
    Ok(chosen)
}
