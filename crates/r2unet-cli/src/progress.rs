//! Progress bars (indicatif) for training and evaluation.
use indicatif::{ProgressBar, ProgressStyle};
use r2unet_train::trainer::{EpochLog, Observer};

pub fn bar(len: usize, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .expect("template is valid")
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

#[derive(Default)]
pub struct TrainBars {
    current: Option<ProgressBar>,
}

impl Observer for TrainBars {
    fn loading(&mut self, what: &str, done: usize, total: usize) {
        if done == 1 {
            self.current = Some(bar(total, &format!("load {what}")));
        }
        if let Some(b) = &self.current {
            b.set_position(done as u64);
            if done == total {
                b.finish_and_clear();
            }
        }
    }

    fn epoch_start(&mut self, epoch: usize, epochs: usize, examples: usize) {
        self.current = Some(bar(examples, &format!("epoch {epoch}/{epochs}")));
    }

    fn batch(&mut self, done: usize, loss: f64) {
        if let Some(b) = &self.current {
            b.set_position(done as u64);
            b.set_message(format!("loss {loss:.4}"));
        }
    }

    fn epoch_end(&mut self, log: &EpochLog) {
        if let Some(b) = self.current.take() {
            b.finish_and_clear();
        }
        eprintln!(
            "epoch {:>3}  loss {:.4}  val_loss {:.4}  val_auc {:.4}  val_f1 {:.4}  {:.0} ex/s  {:.0}s{}",
            log.epoch,
            log.train_loss,
            log.val_loss,
            log.val_auc,
            log.val_f1,
            log.examples_per_s,
            log.seconds,
            if log.best { "  *best" } else { "" }
        );
    }
}
