//! Which files of a repository a reference means, as llama.cpp's `-hf` chooses: the quant tag
//! is matched case-insensitively in the file name (as a whole word: `Q4_K` does not match
//! `Q4_K_M`); with no tag, `Q4_K_M`, else the first of `Q4_0`, `Q8_0`, else the first GGUF file.
//! Projector files (`mmproj`) are never chosen. A split file (`NAME-0000k-of-0000n.gguf`) brings
//! all its parts, in order, and every part must be in the repository.

use crate::reference::{RefTarget, DEFAULT_QUANT};
use crate::{HubError, ModelRef};

/// Fallbacks when no tag was given and the repository has no `Q4_K_M` file.
const FALLBACK_QUANTS: [&str; 2] = ["Q4_0", "Q8_0"];

/// The files a reference resolves to: one file, or the parts of a split file in order.
pub fn select_files(r: &ModelRef, files: &[String]) -> Result<Vec<String>, HubError> {
    let ggufs: Vec<&String> = files
        .iter()
        .filter(|f| f.to_ascii_lowercase().ends_with(".gguf"))
        .filter(|f| !f.to_ascii_lowercase().contains("mmproj"))
        .collect();
    let chosen: String = match &r.target {
        RefTarget::File(f) => {
            if !files.iter().any(|x| x == f) {
                return Err(HubError::FileNotFound {
                    repo: r.repo.clone(),
                    file: f.clone(),
                    revision: "main".into(),
                });
            }
            f.clone()
        }
        RefTarget::Quant(Some(tag)) => {
            first_with_tag(&ggufs, tag).ok_or_else(|| no_such_quant(r, tag, &ggufs))?
        }
        RefTarget::Quant(None) => {
            if ggufs.is_empty() {
                return Err(HubError::NoGguf {
                    repo: r.repo.clone(),
                });
            }
            std::iter::once(DEFAULT_QUANT)
                .chain(FALLBACK_QUANTS)
                .find_map(|tag| first_with_tag(&ggufs, tag))
                .unwrap_or_else(|| first_part_or_self(ggufs[0]))
        }
    };
    split_parts(r, &chosen, files)
}

fn no_such_quant(r: &ModelRef, tag: &str, ggufs: &[&String]) -> HubError {
    if ggufs.is_empty() {
        return HubError::NoGguf {
            repo: r.repo.clone(),
        };
    }
    let available = available_quants(ggufs.iter().map(|s| s.as_str()));
    HubError::NoSuchQuant {
        repo: r.repo.clone(),
        tag: tag.to_string(),
        available: if available.is_empty() {
            "none recognised".into()
        } else {
            available.join(", ")
        },
    }
}

/// The first file (sorted by name, a split's first part preferred) whose name holds `tag`.
fn first_with_tag(ggufs: &[&String], tag: &str) -> Option<String> {
    let mut hits: Vec<&String> = ggufs.iter().copied().filter(|f| has_tag(f, tag)).collect();
    hits.sort();
    hits.first().map(|f| first_part_or_self(f))
}

/// Whether the file name (not its directories) holds `tag` as a whole word, ignoring case.
fn has_tag(file: &str, tag: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or(file).to_ascii_lowercase();
    let tag = tag.to_ascii_lowercase();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    name.match_indices(&tag).any(|(at, _)| {
        !word(name[..at].chars().next_back()) && !word(name[at + tag.len()..].chars().next())
    })
}

/// For a split part, the name of its first part; otherwise the name itself.
fn first_part_or_self(file: &str) -> String {
    match split_info(file) {
        Some((stem, _, n)) => part_name(stem, 1, n),
        None => file.to_string(),
    }
}

/// `(stem, k, n)` for `STEM-0000k-of-0000n.gguf` (five digits each, as `gguf-split` writes).
pub fn split_info(file: &str) -> Option<(&str, u32, u32)> {
    let lower = file.to_ascii_lowercase();
    let base = &file[..lower.strip_suffix(".gguf")?.len()];
    // `-00001-of-00002` is 15 characters.
    let cut = base.len().checked_sub(15)?;
    let (stem, tail) = (base.get(..cut)?, base.get(cut..)?);
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    let k = tail.strip_prefix('-')?.get(..5)?;
    let n = tail.get(6..)?.strip_prefix("-of-")?;
    if !(digits(k) && digits(n)) {
        return None;
    }
    let (k, n): (u32, u32) = (k.parse().ok()?, n.parse().ok()?);
    (1..=n).contains(&k).then_some((stem, k, n))
}

fn part_name(stem: &str, k: u32, n: u32) -> String {
    format!("{stem}-{k:05}-of-{n:05}.gguf")
}

/// `chosen` alone, or every part of its split in order (all must be in `files`).
fn split_parts(r: &ModelRef, chosen: &str, files: &[String]) -> Result<Vec<String>, HubError> {
    let Some((stem, k, n)) = split_info(chosen) else {
        return Ok(vec![chosen.to_string()]);
    };
    if k != 1 {
        return Err(HubError::BadReference {
            reference: r.to_string(),
            reason: format!("{chosen} is part {k} of a split model: name its first part"),
        });
    }
    let parts: Vec<String> = (1..=n).map(|k| part_name(stem, k, n)).collect();
    let missing: Vec<&str> = parts
        .iter()
        .filter(|p| !files.contains(p))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(HubError::IncompleteSplit {
            repo: r.repo.clone(),
            file: chosen.to_string(),
            missing: missing.join(", "),
        });
    }
    Ok(parts)
}

/// The quant tags that appear in these GGUF file names (`Q4_K_M`, `IQ3_XXS`, `F16`, `BF16`…),
/// upper-cased, in order of first appearance, without duplicates.
pub fn available_quants<'a>(files: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for f in files {
        let name = f.rsplit('/').next().unwrap_or(f);
        let base = name.get(..name.len().saturating_sub(5)).unwrap_or(name);
        for word in base.split(['-', '.']) {
            let w = word.to_ascii_uppercase();
            let quantish = ["F16", "BF16", "F32"].contains(&w.as_str())
                || ((w.starts_with('Q') && w[1..].starts_with(|c: char| c.is_ascii_digit()))
                    || (w.starts_with("IQ") && w[2..].starts_with(|c: char| c.is_ascii_digit())))
                    && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if quantish && !tags.contains(&w) {
                tags.push(w);
            }
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn pick(r: &str, names: &[&str]) -> Result<Vec<String>, HubError> {
        select_files(&ModelRef::parse(r).unwrap(), &files(names))
    }

    const REPO: &[&str] = &[
        "README.md",
        "m-Q4_K.gguf",
        "m-Q4_K_M.gguf",
        "m-q8_0.gguf",
        "mmproj-m-Q4_K_M.gguf",
        "big/m-F16-00001-of-00002.gguf",
        "big/m-F16-00002-of-00002.gguf",
    ];

    #[test]
    fn tags_match_whole_words_ignoring_case() {
        assert_eq!(pick("o/r:Q4_K_M", REPO).unwrap(), ["m-Q4_K_M.gguf"]);
        assert_eq!(pick("o/r:q4_k", REPO).unwrap(), ["m-Q4_K.gguf"]);
        assert_eq!(pick("o/r:Q8_0", REPO).unwrap(), ["m-q8_0.gguf"]);
        assert_eq!(pick("o/r", REPO).unwrap(), ["m-Q4_K_M.gguf"]);
    }

    #[test]
    fn a_split_brings_all_its_parts_in_order() {
        assert_eq!(
            pick("o/r:F16", REPO).unwrap(),
            [
                "big/m-F16-00001-of-00002.gguf",
                "big/m-F16-00002-of-00002.gguf"
            ]
        );
        let e = pick("o/r:F16", &REPO[..6]).unwrap_err();
        assert!(e.to_string().contains("m-F16-00002-of-00002.gguf"), "{e}");
        let e = pick("o/r/big/m-F16-00002-of-00002.gguf", REPO).unwrap_err();
        assert!(e.to_string().contains("first part"), "{e}");
    }

    #[test]
    fn an_unknown_tag_lists_the_available_quants() {
        let e = pick("o/r:Q5_K_S", REPO).unwrap_err().to_string();
        assert!(
            e.contains("available quants: Q4_K, Q4_K_M, Q8_0, F16"),
            "{e}"
        );
        let e = pick("o/r", &["README.md"]).unwrap_err().to_string();
        assert!(e.contains("no GGUF files"), "{e}");
    }

    #[test]
    fn without_a_tag_the_fallbacks_apply() {
        assert_eq!(
            pick("o/r", &["a-Q8_0.gguf", "a-Q4_0.gguf"]).unwrap(),
            ["a-Q4_0.gguf"]
        );
        assert_eq!(pick("o/r", &["a-Q6_K.gguf"]).unwrap(), ["a-Q6_K.gguf"]);
    }

    #[test]
    fn split_names_are_recognised_exactly() {
        assert_eq!(split_info("a-00002-of-00003.gguf"), Some(("a", 2, 3)));
        assert_eq!(split_info("a-00004-of-00003.gguf"), None);
        assert_eq!(split_info("a-0002-of-00003.gguf"), None);
        assert_eq!(split_info("x.gguf"), None);
    }
}
