//! Measurements on a segmentation mask, one set per task: the vessel tree of a fundus photo
//! (area fraction, length, calibre, tortuosity, branching, fractal dimension), a skin lesion
//! (area, perimeter, diameter, asymmetry, compactness) and the lungs of a CT slice (area per
//! lung). The CLI and the browser both call [`measure`], so one mask gives the same figures in
//! both.
//!
//! Every figure is in pixels, and also in physical units when the caller gives a scale
//! ([`MeasureOptions`]). A figure that a mask leaves undefined (a calibre with no vessel, a
//! diameter with no lesion) is `None`: `null` in JSON and an empty cell in CSV, never NaN. The
//! result's `notes` say why. The definitions are on the fields of [`RetinaMeasures`],
//! [`SkinMeasures`] and [`LungMeasures`].
//!
//! Everything runs in O(pixels), or close to it: a 3500x3500 mask takes well under a second.
mod components;
mod distance;
#[cfg(test)]
mod draw;
mod fractal;
mod graph;
mod hull;
mod lung;
mod perimeter;
mod retina;
mod skeleton;
mod skin;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::preprocess::Task;

pub use lung::LungMeasures;
pub use retina::{RetinaMeasures, ScaleSource};
pub use skin::SkinMeasures;

/// The scale of the image, where the caller knows it. Each option applies to one task; an option
/// given for another task is ignored, and the result's notes say so.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeasureOptions {
    /// Size of one pixel in micrometres (retina, skin): the user's scale.
    pub pixel_size_um: Option<f64>,
    /// Retina only: the camera's field-of-view angle in degrees (DRIVE and STARE 45, CHASE_DB1
    /// 30). The scale is then derived from the FOV disc's width in pixels, taking 1 degree of
    /// visual angle as 288 µm on the retina (Drasdo & Fowler 1974, for an emmetropic eye; an
    /// eye's refraction and axial length change it by up to ~10-20%). `pixel_size_um` wins if
    /// both are given.
    pub fov_angle_deg: Option<f64>,
    /// Lung only: the pixel spacing in millimetres (from the DICOM header); areas are then also
    /// in mm².
    pub pixel_spacing_mm: Option<f64>,
}

impl MeasureOptions {
    /// Checks every scale given: a finite number above 0 (and below a bound no real image
    /// reaches). [`measure`] calls it; a caller may call it first, to refuse a bad scale before
    /// the work that makes the mask.
    pub fn validate(&self) -> Result<()> {
        let positive = |value: Option<f64>, what: &str, max: f64| match value {
            Some(v) if !(v.is_finite() && v > 0.0 && v <= max) => Err(Error::Config(format!(
                "{what} must be a number above 0 and at most {max}, not {v}"
            ))),
            _ => Ok(()),
        };
        positive(self.pixel_size_um, "the pixel size (µm)", 1e6)?;
        // Beyond ~200° no fundus camera exists, and the linear degree-to-µm rule fails well before.
        positive(
            self.fov_angle_deg,
            "the field-of-view angle (degrees)",
            200.0,
        )?;
        positive(self.pixel_spacing_mm, "the pixel spacing (mm)", 1e3)
    }
}

/// One mask's measurements, tagged with its task: `{"task": "retina", ...}`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "task", rename_all = "camelCase")]
pub enum Measurements {
    Retina(RetinaMeasures),
    Skin(SkinMeasures),
    Lung(LungMeasures),
}

/// Measures `mask` (`width * height` pixels, row-major, `true` = vessel, lesion or lung) for
/// `task`. `fov` is the field of view at the mask's size, used by the retina task (`None` = the
/// whole image); the other tasks ignore it.
///
/// Errors: a mask (or FOV) whose length is not `width * height`, an empty image, or a scale that
/// is not a positive number.
pub fn measure(
    task: Task,
    mask: &[bool],
    width: usize,
    height: usize,
    fov: Option<&[bool]>,
    options: &MeasureOptions,
) -> Result<Measurements> {
    let pixels = width
        .checked_mul(height)
        .ok_or_else(|| Error::Config(format!("a {width}x{height} mask is too large")))?;
    if pixels == 0 {
        return Err(Error::Config(format!(
            "cannot measure an empty ({width}x{height}) mask"
        )));
    }
    // Pixel indices are kept in 32 bits (4 bytes a pixel, not 8, in the largest buffers).
    if u32::try_from(pixels).is_err() {
        return Err(Error::Config(format!(
            "a {width}x{height} mask is too large to measure (4 billion pixels at most)"
        )));
    }
    for (what, len) in [("mask", Some(mask.len())), ("FOV", fov.map(<[bool]>::len))] {
        if let Some(len) = len.filter(|&len| len != pixels) {
            return Err(Error::Config(format!(
                "the {what} has {len} pixels, but {width}x{height} = {pixels}"
            )));
        }
    }
    options.validate()?;
    let mut ignored = Vec::new();
    let mut ignore = |given: bool, what: &str, applies: &str| {
        if given {
            ignored.push(format!("{what} applies to {applies} only; ignored"));
        }
    };
    Ok(match task {
        Task::Retina => {
            ignore(options.pixel_spacing_mm.is_some(), "pixelSpacingMm", "lung");
            let mut m = retina::measure(mask, width, height, fov, options);
            m.notes.extend(ignored);
            Measurements::Retina(m)
        }
        Task::Skin => {
            ignore(fov.is_some(), "a field of view", "retina");
            ignore(options.fov_angle_deg.is_some(), "fovAngleDeg", "retina");
            ignore(options.pixel_spacing_mm.is_some(), "pixelSpacingMm", "lung");
            let mut m = skin::measure(mask, width, height, options.pixel_size_um);
            m.notes.extend(ignored);
            Measurements::Skin(m)
        }
        Task::Lung => {
            ignore(fov.is_some(), "a field of view", "retina");
            ignore(
                options.pixel_size_um.is_some(),
                "pixelSizeUm",
                "retina and skin",
            );
            ignore(options.fov_angle_deg.is_some(), "fovAngleDeg", "retina");
            let mut m = lung::measure(mask, width, height, options.pixel_spacing_mm);
            m.notes.extend(ignored);
            Measurements::Lung(m)
        }
    })
}

impl Measurements {
    pub fn task(&self) -> Task {
        match self {
            Measurements::Retina(_) => Task::Retina,
            Measurements::Skin(_) => Task::Skin,
            Measurements::Lung(_) => Task::Lung,
        }
    }

    /// Pretty-printed JSON, `null` for undefined values. (`serde_json::to_string` gives the
    /// compact form.)
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("measurements hold only finite numbers")
    }

    /// The CSV header for `task`'s rows: the JSON field names, in the fields' order, `notes`
    /// last. No `task` column (a file holds one task); a caller may put its own columns (a file
    /// name) in front.
    pub fn csv_header(task: Task) -> &'static str {
        match task {
            Task::Retina => retina::CSV_HEADER,
            Task::Skin => skin::CSV_HEADER,
            Task::Lung => lung::CSV_HEADER,
        }
    }

    /// One CSV row matching [`Measurements::csv_header`] (no line end): numbers as JSON writes
    /// them, undefined values empty, the notes joined by "; " and quoted.
    pub fn csv_row(&self) -> String {
        // Read back from the JSON form, so that the row cannot drift from the serialized fields.
        let value = serde_json::to_value(self).expect("measurements hold only finite numbers");
        Self::csv_header(self.task())
            .split(',')
            .map(|key| csv_cell(&value[key]))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn csv_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => csv_quote(s),
        Value::Array(items) => csv_quote(
            &items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => other.to_string(),
    }
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `Some(v)` for a finite value: every ratio goes through here, so that no NaN or infinity
/// reaches JSON (which cannot hold them).
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The `q` quantile (0..=1) of sorted values, interpolated linearly between the two nearest ranks
/// (numpy's default), or `None` for no values.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q * last as f64;
    let (lo, frac) = (pos.floor() as usize, pos.fract());
    let hi = (lo + 1).min(last);
    finite(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(width: usize, height: usize, on: bool) -> Vec<bool> {
        vec![on; width * height]
    }

    #[test]
    fn mismatched_sizes_are_errors() {
        let opts = MeasureOptions::default();
        for task in Task::ALL {
            let mask = all(10, 10, true);
            assert!(matches!(
                measure(task, &mask, 10, 11, None, &opts),
                Err(Error::Config(_))
            ));
            assert!(measure(task, &mask, 0, 0, None, &opts).is_err());
            assert!(measure(task, &[], 0, 0, None, &opts).is_err());
            assert!(measure(task, &[], 0, 5, None, &opts).is_err());
            assert!(measure(task, &mask, usize::MAX, 2, None, &opts).is_err());
        }
        let mask = all(10, 10, true);
        let fov = all(9, 10, true);
        assert!(measure(Task::Retina, &mask, 10, 10, Some(&fov), &opts).is_err());
    }

    #[test]
    fn bad_scales_are_errors() {
        let mask = all(10, 10, true);
        for opts in [
            MeasureOptions {
                pixel_size_um: Some(0.0),
                ..Default::default()
            },
            MeasureOptions {
                pixel_size_um: Some(f64::NAN),
                ..Default::default()
            },
            MeasureOptions {
                fov_angle_deg: Some(-45.0),
                ..Default::default()
            },
            MeasureOptions {
                pixel_spacing_mm: Some(f64::INFINITY),
                ..Default::default()
            },
        ] {
            for task in Task::ALL {
                assert!(matches!(
                    measure(task, &mask, 10, 10, None, &opts),
                    Err(Error::Config(_))
                ));
            }
        }
    }

    #[test]
    fn csv_header_names_every_json_field_and_rows_fit_it() {
        let (w, h) = (64, 48);
        let mut mask = all(w, h, false);
        for y in 10..30 {
            for x in 5..25 {
                mask[y * w + x] = true;
            }
        }
        let opts = MeasureOptions {
            pixel_size_um: Some(10.0),
            pixel_spacing_mm: Some(0.7),
            ..Default::default()
        };
        for task in Task::ALL {
            let m = measure(task, &mask, w, h, None, &opts).unwrap();
            assert_eq!(m.task(), task);
            let json: Value = serde_json::from_str(&m.to_json()).unwrap();
            let obj = json.as_object().unwrap();
            assert_eq!(obj["task"], task.name());
            let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            keys.retain(|&k| k != "task");
            keys.sort_unstable();
            let header = Measurements::csv_header(task);
            let mut names: Vec<&str> = header.split(',').collect();
            assert_eq!(names.last(), Some(&"notes"), "{header}");
            names.sort_unstable();
            assert_eq!(keys, names, "{task:?}");
            let row = m.csv_row();
            // The notes (an option ignored for this task) are the one quoted cell.
            let unquoted = row.split('"').next().unwrap();
            assert_eq!(
                unquoted.split(',').count(),
                header.split(',').count(),
                "{header}\n{row}"
            );
        }
    }

    #[test]
    fn options_read_camel_case_json() {
        let o: MeasureOptions =
            serde_json::from_str(r#"{"pixelSizeUm": 6.5, "fovAngleDeg": 45}"#).unwrap();
        assert_eq!(
            (o.pixel_size_um, o.fov_angle_deg, o.pixel_spacing_mm),
            (Some(6.5), Some(45.0), None)
        );
        let o: MeasureOptions = serde_json::from_str("{}").unwrap();
        assert!(o.pixel_size_um.is_none());
        let json = serde_json::to_string(&MeasureOptions {
            pixel_spacing_mm: Some(0.7),
            ..Default::default()
        })
        .unwrap();
        assert!(json.contains("\"pixelSpacingMm\":0.7"), "{json}");
    }

    #[test]
    fn csv_cells_quote_and_blank() {
        assert_eq!(csv_cell(&Value::Null), "");
        assert_eq!(csv_cell(&serde_json::json!(1.5)), "1.5");
        assert_eq!(csv_cell(&serde_json::json!(["a, b", "c"])), "\"a, b; c\"");
        assert_eq!(
            csv_cell(&serde_json::json!("say \"x\"")),
            "\"say \"\"x\"\"\""
        );
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert_eq!(quantile(&v, 0.1), Some(1.4));
        assert_eq!(quantile(&v, 1.0), Some(5.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7.0], 0.9), Some(7.0));
    }
}
