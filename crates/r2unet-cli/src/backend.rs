//! Picking the compute device: wgpu when it finds an adapter, otherwise burn-flex on the CPU.
use anyhow::{Result, bail};
use r2unet::burn::tensor::Device;

use crate::args::BackendArg;

pub struct Chosen {
    pub device: Device,
    pub name: &'static str,
}

/// Lists GPU adapters on the native graphics APIs (Vulkan, Metal, DX12), without the GL
/// fallback: on a machine without a GPU, burn's own lazy init was seen to spin for minutes.
/// Software adapters (SwiftShader, lavapipe) only count with `R2UNET_ALLOW_CPU_ADAPTER=1`: they
/// are far slower than flex, but they let the wgpu training path be tested on a machine
/// without a GPU.
#[cfg(feature = "wgpu")]
fn gpu_adapters() -> Vec<String> {
    let allow_cpu = std::env::var_os("R2UNET_ALLOW_CPU_ADAPTER").is_some_and(|v| v == "1");
    use r2unet::burn::tensor::wgpu::wgpu;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = without_wayland_noise(|| {
        pollster_block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
    });
    adapters
        .into_iter()
        .map(|a| a.get_info())
        .filter(|i| allow_cpu || i.device_type != wgpu::DeviceType::Cpu)
        .map(|i| format!("{} ({:?})", i.name, i.backend))
        .collect()
}

/// Runs `f` (the adapter probe) with stderr pointed at /dev/null when `XDG_RUNTIME_DIR` is unset
/// (containers, CI, ssh sessions). There the Vulkan drivers' Wayland support (libwayland-client)
/// prints "error: XDG_RUNTIME_DIR is invalid or not set in the environment." twice while adapters
/// are listed, and the probe then goes on fine: a false alarm in a tool whose "error:" lines
/// mean failure. What the probe finds is reported by the caller either way.
#[cfg(all(feature = "wgpu", unix))]
fn without_wayland_noise<T>(f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return f();
    }
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return f();
    };
    // SAFETY: dup of the process's stderr descriptor, which is open or makes dup fail (-1).
    let saved = unsafe { libc::dup(libc::STDERR_FILENO) };
    if saved < 0 {
        return f();
    }
    // SAFETY: both descriptors are open (`null` lives to the end of this function).
    unsafe { libc::dup2(null.as_raw_fd(), libc::STDERR_FILENO) };
    let out = f();
    // SAFETY: `saved` is the descriptor dup'ed above, still open; it is closed once restored.
    unsafe {
        libc::dup2(saved, libc::STDERR_FILENO);
        libc::close(saved);
    }
    out
}

#[cfg(all(feature = "wgpu", not(unix)))]
fn without_wayland_noise<T>(f: impl FnOnce() -> T) -> T {
    f()
}

#[cfg(feature = "wgpu")]
/// Minimal executor for the one future above (wgpu's enumeration resolves immediately natively).
fn pollster_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Noop;
    impl Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    let waker = Waker::from(std::sync::Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

#[cfg(not(feature = "wgpu"))]
fn try_wgpu() -> std::result::Result<Device, String> {
    Err("this r2unet was built without the `wgpu` feature".into())
}

#[cfg(feature = "wgpu")]
fn try_wgpu() -> std::result::Result<Device, String> {
    let found = std::panic::catch_unwind(gpu_adapters)
        .map_err(|_| "adapter enumeration panicked".to_string())?;
    if found.is_empty() {
        return Err("no GPU adapter on Vulkan, Metal or DX12".into());
    }
    eprintln!("backend: found {}", found.join(", "));
    // The device's own Vulkan instance prints the same false alarm as the probe.
    match std::panic::catch_unwind(|| without_wayland_noise(|| Device::wgpu_options().init())) {
        Ok(Ok(device)) => Ok(device),
        Ok(Err(e)) => Err(format!("{e}")),
        Err(_) => Err("adapter initialisation panicked".into()),
    }
}

/// Resolves `--backend` and says on stderr which one runs.
pub fn choose(arg: BackendArg) -> Result<Chosen> {
    let chosen = match arg {
        BackendArg::Flex => Chosen {
            device: Device::flex(),
            name: "flex",
        },
        BackendArg::Wgpu => match try_wgpu() {
            Ok(device) => Chosen {
                device,
                name: "wgpu",
            },
            Err(e) => bail!("--backend wgpu: no usable GPU adapter ({e})"),
        },
        BackendArg::Auto => match try_wgpu() {
            Ok(device) => Chosen {
                device,
                name: "wgpu",
            },
            Err(e) => {
                eprintln!("backend: no wgpu adapter ({e}); using flex (CPU)");
                Chosen {
                    device: Device::flex(),
                    name: "flex",
                }
            }
        },
    };
    eprintln!("backend: {}", chosen.name);
    Ok(chosen)
}

/// Makes `chosen` burn's default device too. burn puts a resumed optimizer's state on
/// `Device::default()` (`ModuleOptimizer::load_record` takes no device), which is wgpu whenever
/// it is compiled in: on a CPU run that initialised a second, software Vulkan device beside
/// flex (and its driver printed "error: XDG_RUNTIME_DIR is invalid" four times), and on a
/// machine without any adapter it would fail. `BURN_DEVICE` is how burn is told; an explicit
/// one in the environment wins.
///
/// # Safety
/// No other thread may exist: it sets an environment variable.
pub unsafe fn make_default(chosen: &Chosen) {
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: the caller guarantees that this process runs no other thread yet.
        unsafe { std::env::set_var("BURN_DEVICE", chosen.name) };
    }
}
