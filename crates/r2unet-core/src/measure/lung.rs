//! Lung measures on a CT slice: the area of each lung.
use serde::Serialize;

use super::components::components;

/// Pieces smaller than this share of the image are specks (noise, a bowel-gas pocket), not a
/// lung: 0.5%, about 330 pixels of a 256x256 slice, where a mid-chest lung holds thousands. The
/// smallest slices at the apex and base can fall under it; their lungs are then not assigned.
pub(crate) const SPECK_SHARE: f64 = 0.005;

/// Measures of a lung mask on one axial CT slice.
///
/// The two largest 8-connected pieces that are not specks (under 0.5% of the image) are the
/// lungs. Which is which assumes radiological convention, the way CT is displayed (by DICOM
/// viewers, and in the Kaggle set that r2unet's lung model was trained on): looking up from
/// the patient's feet, so the **patient's right lung is on the image's left**. Of the two, the
/// one whose centroid lies further left in the image is `patientRight`. A slice shown in
/// neurological convention (mirrored) swaps the two.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LungMeasures {
    /// Lung pixels, all pieces (specks included).
    pub area_px: u64,
    /// The patient's right lung (the image's left one); `null` unless two lungs are found.
    pub patient_right_area_px: Option<u64>,
    /// The patient's left lung (the image's right one); `null` unless two lungs are found.
    pub patient_left_area_px: Option<u64>,
    /// 8-connected pieces of the mask, specks included.
    pub components: u64,
    /// The pixel spacing given (`pixelSpacingMm`), mm per pixel.
    pub mm_per_pixel: Option<f64>,
    pub area_mm2: Option<f64>,
    pub patient_right_area_mm2: Option<f64>,
    pub patient_left_area_mm2: Option<f64>,
    /// Why a value is null, and anything else a reader should know.
    pub notes: Vec<String>,
}

pub(crate) const CSV_HEADER: &str = "areaPx,patientRightAreaPx,patientLeftAreaPx,components,\
mmPerPixel,areaMm2,patientRightAreaMm2,patientLeftAreaMm2,notes";

pub(crate) fn measure(
    mask: &[bool],
    width: usize,
    height: usize,
    mm_per_pixel: Option<f64>,
) -> LungMeasures {
    let area = mask.iter().filter(|&&v| v).count() as u64;
    let pieces = components(mask, width, height);
    let min_lung = SPECK_SHARE * mask.len() as f64;
    let mut lungs: Vec<_> = pieces
        .iter()
        .filter(|c| c.size as f64 >= min_lung)
        .collect();
    // Largest first; ties (a synthetic mask) broken left to right, so the order is stable.
    lungs.sort_by(|a, b| b.size.cmp(&a.size).then(a.sum_x.cmp(&b.sum_x)));
    let mut notes = Vec::new();
    let specks = pieces.len() - lungs.len();
    if specks > 0 {
        notes.push(format!(
            "{specks} piece(s) under {}% of the image ignored as specks",
            SPECK_SHARE * 100.0
        ));
    }
    let (right, left) = match lungs.len() {
        0 => {
            notes.push("no lung found: no piece of at least 0.5% of the image".to_owned());
            (None, None)
        }
        1 => {
            notes.push(
                "one lung-sized piece only (the lungs touch, or one is missing): left and right \
                 not assigned"
                    .to_owned(),
            );
            (None, None)
        }
        n => {
            if n > 2 {
                notes.push(format!(
                    "{n} lung-sized pieces: the two largest are the lungs; the others count in \
                     areaPx only"
                ));
            }
            let (a, b) = (lungs[0], lungs[1]);
            let (image_left, image_right) = if a.centroid_x() <= b.centroid_x() {
                (a, b)
            } else {
                (b, a)
            };
            (Some(image_left.size), Some(image_right.size))
        }
    };
    let mm2 = |px: Option<u64>| Some(px? as f64 * mm_per_pixel?.powi(2));
    LungMeasures {
        area_px: area,
        patient_right_area_px: right,
        patient_left_area_px: left,
        components: pieces.len() as u64,
        mm_per_pixel,
        area_mm2: mm2(Some(area)),
        patient_right_area_mm2: mm2(right),
        patient_left_area_mm2: mm2(left),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::draw;

    #[test]
    fn the_image_left_lung_is_the_patient_right() {
        let (w, h) = (256, 256);
        let image_left = draw::rect(w, h, 30, 60, 100, 200); // 70 x 140 = 9800
        let image_right = draw::rect(w, h, 150, 70, 210, 190); // 60 x 120 = 7200
        let speck = draw::rect(w, h, 120, 10, 125, 15);
        let mask = draw::or(&draw::or(&image_left, &image_right), &speck);
        let m = measure(&mask, w, h, Some(0.7));
        assert_eq!(m.patient_right_area_px, Some(9800));
        assert_eq!(m.patient_left_area_px, Some(7200));
        assert_eq!((m.area_px, m.components), (9800 + 7200 + 25, 3));
        assert!((m.patient_right_area_mm2.unwrap() - 9800.0 * 0.49).abs() < 1e-6);
        assert_eq!(m.notes.len(), 1, "{:?}", m.notes);
        // The smaller lung on the image's left: still the patient's right.
        let small_left = draw::rect(w, h, 30, 60, 60, 120);
        let m = measure(&draw::or(&small_left, &image_right), w, h, None);
        assert_eq!(m.patient_right_area_px, Some(30 * 60));
        assert_eq!(m.patient_left_area_px, Some(7200));
        assert_eq!(m.area_mm2, None);
    }

    #[test]
    fn one_or_no_lung_leaves_sides_null() {
        let (w, h) = (100, 100);
        let one = draw::rect(w, h, 10, 10, 60, 60);
        let m = measure(&one, w, h, None);
        assert_eq!(
            (m.patient_right_area_px, m.patient_left_area_px),
            (None, None)
        );
        assert_eq!(m.area_px, 2500);
        assert_eq!(m.notes.len(), 1);
        let m = measure(&[false; 10_000], w, h, Some(1.0));
        assert_eq!((m.area_px, m.components), (0, 0));
        assert_eq!(m.patient_right_area_mm2, None);
        assert_eq!(m.area_mm2, Some(0.0));
        assert!(!m.notes.is_empty());
        let m = measure(&[true; 10_000], w, h, None);
        assert_eq!((m.area_px, m.components), (10_000, 1));
    }
}
