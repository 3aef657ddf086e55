//! Picking the compute device: burn-flex on the CPU, or wgpu where it finds an adapter and (with
//! `--backend auto`) a short timed run of the command's own work is faster there.
use std::time::Instant;

use anyhow::{Result, bail};
use r2unet::Task;
use r2unet::burn::tensor::{Device, Distribution, Tensor};
use r2unet::model::ModelConfig;
use r2unet::ops::{GpuOps, set_gpu_ops};

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

static WGPU_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process created a wgpu device (used or not).
pub fn wgpu_started() -> bool {
    WGPU_STARTED.load(std::sync::atomic::Ordering::Relaxed)
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
        Ok(Ok(device)) => {
            WGPU_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(device)
        }
        Ok(Err(e)) => Err(format!("{e}")),
        Err(_) => Err("adapter initialisation panicked".into()),
    }
}

/// What `--backend auto` times on each device before it chooses: the work the command is about
/// to do, at its real shape.
pub enum Workload {
    /// A training step (forward and backward) of `model` on `[batch, model.in_channels, side,
    /// side]`.
    Training {
        model: ModelConfig,
        batch: usize,
        side: usize,
    },
    /// One forward pass of `model` on `[1, model.in_channels, side, side]` (a tile).
    Inference { model: ModelConfig, side: usize },
}

impl Workload {
    /// Inference of `task`'s default architecture on one `side` x `side` tile: what a shipped or
    /// trained model of that task costs, before its weights are read.
    pub fn tile(task: Task, side: usize) -> Self {
        Workload::Inference {
            model: ModelConfig::new().with_in_channels(task.channels()),
            side,
        }
    }

    fn describe(&self) -> String {
        match self {
            Workload::Training { model, batch, side } => format!(
                "a training step of {batch} x {}x{side}x{side}",
                model.in_channels
            ),
            Workload::Inference { model, side } => {
                format!("a {}x{side}x{side} tile", model.in_channels)
            }
        }
    }

    /// Seconds per run on `device`: one warm-up run (kernel compilation, allocation), then the
    /// mean of up to `runs` timed ones; the timed runs stop early once they pass `give_up`
    /// seconds (what the other device took), since the answer is known then.
    fn seconds_on(&self, device: &Device, runs: u32, give_up: f64) -> Result<f64, String> {
        let (model, shape, training) = match self {
            Workload::Training { model, batch, side } => {
                (model, [*batch, model.in_channels, *side, *side], true)
            }
            Workload::Inference { model, side } => {
                (model, [1, model.in_channels, *side, *side], false)
            }
        };
        let device = if training {
            device.clone().autodiff()
        } else {
            device.clone()
        };
        let probe = || -> Result<f64, String> {
            let net = model.init(&device);
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let once = || -> Result<(), String> {
                let y = net.forward(x.clone());
                if training {
                    drop(y.mean().backward());
                } else {
                    drop(y);
                }
                device.sync().map_err(|e| format!("{e:?}"))
            };
            once()?;
            let start = Instant::now();
            let mut done = 0;
            while done < runs {
                once()?;
                done += 1;
                if start.elapsed().as_secs_f64() > give_up * f64::from(done.max(1)) {
                    break;
                }
            }
            Ok(start.elapsed().as_secs_f64() / f64::from(done))
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(probe))
            .map_err(|_| "the probe panicked".to_string())?
    }
}

/// Seconds per run of `workload` on the GPU, with the GPU ops (`r2unet::ops::GpuOps`) set for
/// the rest of the run. A training workload runs with the lowered ops and with burn's, and keeps
/// the faster (printed with both times): which wins depends on the GPU, and none was at hand to
/// settle it once for all (bench/NOTES.md section 19). `R2UNET_GPU_OPS=lowered|burn` fixes them
/// instead. `give_up`: seconds after which a slower run stops early.
fn gpu_seconds(gpu: &Device, workload: &Workload, give_up: f64) -> Result<f64, String> {
    const RUNS: u32 = 2;
    if !matches!(workload, Workload::Training { .. }) {
        return workload.seconds_on(gpu, RUNS, give_up);
    }
    if gpu_ops_from_env() {
        return workload.seconds_on(gpu, RUNS, give_up);
    }
    set_gpu_ops(GpuOps::Lowered);
    let lowered = workload.seconds_on(gpu, RUNS, give_up);
    set_gpu_ops(GpuOps::Burn);
    let burns = workload.seconds_on(gpu, RUNS, lowered.clone().unwrap_or(give_up).min(give_up));
    let what = workload.describe();
    let (ops, time) = match (&lowered, &burns) {
        (Ok(l), Ok(b)) if l <= b => {
            eprintln!("backend: GPU ops: lowered: {what} took {l:.3} s, with burn's own {b:.3} s");
            (GpuOps::Lowered, *l)
        }
        (Ok(l), Ok(b)) => {
            eprintln!(
                "backend: GPU ops: burn: {what} took {b:.3} s, with the lowered ones {l:.3} s"
            );
            (GpuOps::Burn, *b)
        }
        (Ok(l), Err(e)) => {
            eprintln!("backend: GPU ops: lowered (burn's own failed: {e})");
            (GpuOps::Lowered, *l)
        }
        (Err(e), Ok(b)) => {
            eprintln!("backend: GPU ops: burn (the lowered ones failed: {e})");
            (GpuOps::Burn, *b)
        }
        (Err(_), Err(e)) => return Err(e.clone()),
    };
    set_gpu_ops(ops);
    Ok(time)
}

/// Applies `R2UNET_GPU_OPS=lowered|burn` where it is set (and says so); whether it was.
fn gpu_ops_from_env() -> bool {
    let ops = match std::env::var("R2UNET_GPU_OPS").ok().as_deref() {
        Some("lowered") => GpuOps::Lowered,
        Some("burn") => GpuOps::Burn,
        Some(other) => {
            eprintln!("warning: R2UNET_GPU_OPS={other} is neither 'lowered' nor 'burn'; ignored");
            return false;
        }
        None => return false,
    };
    set_gpu_ops(ops);
    let name = if ops == GpuOps::Burn {
        "burn"
    } else {
        "lowered"
    };
    eprintln!("backend: GPU ops: {name} (R2UNET_GPU_OPS)");
    true
}

/// `--backend auto` with an adapter found: times `workload` on flex, then on the GPU, and keeps
/// the faster. Printed either way, with both times, so a run's log says why.
fn faster_of(gpu: Device, workload: &Workload) -> Chosen {
    const RUNS: u32 = 2;
    let what = workload.describe();
    let flex = Device::flex();
    let cpu_time = match workload.seconds_on(&flex, RUNS, f64::INFINITY) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("backend: auto: the timing probe failed on flex ({e}); using wgpu");
            return Chosen {
                device: gpu,
                name: "wgpu",
            };
        }
    };
    let threads = rayon::current_num_threads();
    match gpu_seconds(&gpu, workload, cpu_time) {
        Ok(gpu_time) if gpu_time < cpu_time => {
            eprintln!(
                "backend: auto chose wgpu: {what} took {gpu_time:.3} s on wgpu against \
                 {cpu_time:.3} s on flex ({threads} threads)"
            );
            Chosen {
                device: gpu,
                name: "wgpu",
            }
        }
        Ok(gpu_time) => {
            eprintln!(
                "backend: auto chose flex: {what} took {cpu_time:.3} s on flex ({threads} threads) \
                 against {gpu_time:.3} s on wgpu"
            );
            Chosen {
                device: flex,
                name: "flex",
            }
        }
        Err(e) => {
            eprintln!("backend: auto chose flex: the timing probe failed on wgpu ({e})");
            Chosen {
                device: flex,
                name: "flex",
            }
        }
    }
}

/// Resolves `--backend` and says on stderr which one runs. `auto` takes wgpu only where an
/// adapter is found and a short timed run of `workload` is faster there than on flex.
pub fn choose(arg: BackendArg, workload: &Workload) -> Result<Chosen> {
    let chosen = match arg {
        BackendArg::Flex => Chosen {
            device: Device::flex(),
            name: "flex",
        },
        BackendArg::Wgpu => match try_wgpu() {
            Ok(device) => {
                if matches!(workload, Workload::Training { .. }) && !gpu_ops_from_env() {
                    gpu_seconds(&device, workload, f64::INFINITY).map_err(|e| {
                        anyhow::anyhow!("--backend wgpu: a training step failed: {e}")
                    })?;
                }
                Chosen {
                    device,
                    name: "wgpu",
                }
            }
            Err(e) => bail!("--backend wgpu: no usable GPU adapter ({e})"),
        },
        BackendArg::Auto => match try_wgpu() {
            Ok(device) => faster_of(device, workload),
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
    if chosen.name == "flex" {
        let capped = match r2unet::ops::max_cpu_isa_from_env() {
            Ok(Some(cap)) => format!(" ({}={cap})", r2unet::ops::MAX_CPU_ISA_VAR),
            _ => String::new(),
        };
        eprintln!("backend: CPU kernels: {}{capped}", r2unet::ops::cpu_isa());
    }
    Ok(chosen)
}

/// Keeps burn's default device on the CPU. burn puts a resumed optimizer's state on
/// `Device::default()` (`ModuleOptimizer::load_record` takes no device) and moves each tensor to
/// its parameter's device on the next step, so any default is correct; but the default is wgpu
/// whenever it is compiled in, and creating it initialised a second, software Vulkan device on a
/// CPU run (its driver printed "error: XDG_RUNTIME_DIR is invalid" four times) and would fail on
/// a machine without any adapter. `BURN_DEVICE` is how burn is told; an explicit one in the
/// environment wins.
///
/// # Safety
/// No other thread may exist: it sets an environment variable.
pub unsafe fn keep_default_on_cpu() {
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: the caller guarantees that this process runs no other thread yet.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
}
