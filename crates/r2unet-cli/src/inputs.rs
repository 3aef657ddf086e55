//! What `r2unet predict` segments: files named on the command line as they are, and folders
//! walked recursively for image files (or files matching `--glob`), each with the output name it
//! will be written under.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// File name extensions of the formats `image_io::decode` reads. A folder's other files are
/// skipped (and listed), since folders of images usually hold notes, CSVs and thumbnails too.
pub const IMAGE_EXTENSIONS: [&str; 10] = [
    "png", "jpg", "jpeg", "tif", "tiff", "gif", "bmp", "ppm", "pgm", "pnm",
];

/// One image to segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    /// Output name without extension, relative to `--out`: the file stem for a named file, the
    /// path below the folder (minus extension) for a file found in a folder, so that
    /// `a/x.png` and `b/x.png` never overwrite each other's masks.
    pub name: PathBuf,
}

/// The inputs, and the files of walked folders that were skipped (not images, or not matching
/// the glob).
#[derive(Debug)]
pub struct Collected {
    pub inputs: Vec<Input>,
    pub skipped: Vec<PathBuf>,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// `out` is never walked: running twice into a folder inside the input must not segment the
/// first run's masks.
pub fn collect(paths: &[PathBuf], glob: Option<&str>, out: &Path) -> Result<Collected> {
    let pattern = glob
        .map(|g| glob::Pattern::new(g).with_context(|| format!("--glob '{g}'")))
        .transpose()?;
    let out_abs = std::path::absolute(out).unwrap_or_else(|_| out.to_owned());
    let mut inputs = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        // A named file is read (and a missing one reported) with the others, as before folders.
        if !path.is_dir() {
            let stem = path.file_stem().unwrap_or(path.as_os_str());
            inputs.push(Input {
                path: path.clone(),
                name: PathBuf::from(stem),
            });
            continue;
        }
        let mut found = 0;
        let walk = walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| std::path::absolute(e.path()).map_or(true, |p| p != out_abs));
        for entry in walk {
            let entry = entry.with_context(|| format!("reading folder {}", path.display()))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(path).unwrap_or(entry.path());
            let wanted = match &pattern {
                Some(p) => p.matches_path(rel),
                None => is_image(rel),
            };
            if !wanted {
                skipped.push(entry.path().to_owned());
                continue;
            }
            found += 1;
            inputs.push(Input {
                path: entry.path().to_owned(),
                name: rel.with_extension(""),
            });
        }
        if found == 0 {
            bail!(
                "{}: no image files found{}",
                path.display(),
                match glob {
                    Some(g) => format!(" matching --glob '{g}'"),
                    None => format!(" (looked for {})", IMAGE_EXTENSIONS.join(", ")),
                }
            );
        }
    }
    refuse_clashes(&inputs)?;
    Ok(Collected { inputs, skipped })
}

/// Two inputs that would write the same output files (`x.png` and `x.jpg`, or one file named
/// twice) are refused before any work, naming both.
fn refuse_clashes(inputs: &[Input]) -> Result<()> {
    let mut seen: HashMap<&Path, &Path> = HashMap::new();
    for input in inputs {
        if let Some(first) = seen.insert(&input.name, &input.path) {
            bail!(
                "{} and {} would both be written as {}.mask.png; segment them into different --out folders",
                first.display(),
                input.path.display(),
                input.name.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn folders_are_walked_for_images_in_order_and_the_rest_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("in");
        for f in ["b.png", "a.JPG", "notes.txt", "sub/c.tif", "sub/d.csv"] {
            touch(&root.join(f));
        }
        let got = collect(std::slice::from_ref(&root), None, &dir.path().join("out")).unwrap();
        let names: Vec<_> = got.inputs.iter().map(|i| i.name.clone()).collect();
        assert_eq!(
            names,
            [
                PathBuf::from("a"),
                PathBuf::from("b"),
                PathBuf::from("sub/c")
            ]
        );
        assert_eq!(got.skipped.len(), 2);
    }

    #[test]
    fn a_glob_selects_by_path_below_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("in");
        for f in ["x/1_test.tif", "x/1_manual1.gif", "y/2_test.tif"] {
            touch(&root.join(f));
        }
        let got = collect(
            std::slice::from_ref(&root),
            Some("*_test.tif"),
            &dir.path().join("out"),
        )
        .unwrap();
        assert_eq!(got.inputs.len(), 2);
        assert_eq!(got.skipped.len(), 1);
        let none = collect(std::slice::from_ref(&root), Some("*.bmp"), dir.path());
        assert!(none.unwrap_err().to_string().contains("matching --glob"));
    }

    #[test]
    fn the_output_folder_inside_the_input_is_not_walked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("in");
        touch(&root.join("a.png"));
        touch(&root.join("out/a.mask.png"));
        let got = collect(std::slice::from_ref(&root), None, &root.join("out")).unwrap();
        assert_eq!(got.inputs.len(), 1);
    }

    #[test]
    fn inputs_that_would_overwrite_each_other_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("x.png"), dir.path().join("x.jpg"));
        touch(&a);
        touch(&b);
        let err = collect(&[a, b], None, dir.path()).unwrap_err().to_string();
        assert!(err.contains("x.png") && err.contains("x.jpg"), "{err}");
    }
}
