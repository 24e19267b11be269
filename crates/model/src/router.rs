//! The mixture-of-experts router: from one row's router logits to the experts it uses and
//! their weights. Pure arithmetic on slices, no weights or threads, so it is unit-tested
//! against a direct reference in isolation.
//!
//! The steps follow llama.cpp's `build_moe_ffn` (and Hugging Face's Qwen3-MoE and
//! DeepSeek-V3 gates, which it mirrors):
//! 1. scores = softmax(logits) or sigmoid(logits) over all experts;
//! 2. selection scores = scores + the score-correction bias (`exp_probs_b`, DeepSeek-V3),
//!    used only to choose experts, never as weights;
//! 3. with expert groups: each group's score is the sum of its two best selection scores;
//!    only the best `groups_used` groups stay eligible;
//! 4. the `used` best eligible experts by selection score (ties: the lower index first);
//! 5. their weights are their unbiased scores, divided by their sum when normalized (the sum
//!    clamped below at 2⁻¹⁴ as llama.cpp does), then multiplied by the routed scaling factor.

/// How router logits become expert scores (`{arch}.expert_gating_func`: 1 softmax,
/// 2 sigmoid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gating {
    Softmax,
    Sigmoid,
}

impl Gating {
    /// The GGUF code of `{arch}.expert_gating_func`, if Kaiyuan implements it.
    pub fn from_code(code: u64) -> Option<Gating> {
        match code {
            1 => Some(Gating::Softmax),
            2 => Some(Gating::Sigmoid),
            _ => None,
        }
    }
}

/// Smallest normalizing sum (llama.cpp clamps to the smallest normal f16).
const MIN_WEIGHT_SUM: f32 = 6.103_515_6e-5;

/// Routing hyper-parameters of one MoE model.
#[derive(Clone, Debug, PartialEq)]
pub struct RouterConfig {
    /// Routed experts (`{arch}.expert_count`).
    pub experts: usize,
    /// Experts used per token (`{arch}.expert_used_count`).
    pub used: usize,
    pub gating: Gating,
    /// Weights divided by their sum (`{arch}.expert_weights_norm`).
    pub normalize: bool,
    /// Routed scaling factor (`{arch}.expert_weights_scale`; 1 when absent or 0).
    pub scale: f32,
    /// Expert groups (`{arch}.expert_group_count`; 1: no grouping).
    pub groups: usize,
    /// Groups kept per token (`{arch}.expert_group_used_count`).
    pub groups_used: usize,
}

impl RouterConfig {
    /// Checks the counts against each other; `Err` says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.experts == 0 || self.used == 0 || self.used > self.experts {
            return Err(format!(
                "{} experts used per token out of {}",
                self.used, self.experts
            ));
        }
        if self.groups == 0 || !self.experts.is_multiple_of(self.groups) {
            return Err(format!(
                "{} expert groups do not divide {} experts",
                self.groups, self.experts
            ));
        }
        if self.groups > 1 {
            let per_group = self.experts / self.groups;
            if self.groups_used == 0 || self.groups_used > self.groups {
                return Err(format!(
                    "{} groups used out of {}",
                    self.groups_used, self.groups
                ));
            }
            if per_group < 2 {
                return Err("expert groups need at least two experts each".into());
            }
            if self.groups_used * per_group < self.used {
                return Err(format!(
                    "{} groups of {per_group} experts hold fewer than the {} used",
                    self.groups_used, self.used
                ));
            }
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(format!(
                "expert weight scale {} is not positive",
                self.scale
            ));
        }
        Ok(())
    }
}

/// Reusable buffers of [`route`].
#[derive(Default)]
pub struct RouteScratch {
    scores: Vec<f32>,
    select: Vec<f32>,
    order: Vec<u32>,
    groups: Vec<(f32, usize)>,
}

/// `a` ranks before `b`: higher score first, NaN last, ties by lower index.
fn ranks_before(a: (f32, usize), b: (f32, usize)) -> std::cmp::Ordering {
    let key = |v: f32| if v.is_nan() { f32::NEG_INFINITY } else { v };
    key(b.0).total_cmp(&key(a.0)).then(a.1.cmp(&b.1))
}

/// Routes one row: `logits` has `cfg.experts` entries, `bias` (if any) too; writes the
/// chosen experts (best first) to `experts` and their weights to `weights`, both
/// `cfg.used` long.
pub fn route(
    cfg: &RouterConfig,
    logits: &[f32],
    bias: Option<&[f32]>,
    scratch: &mut RouteScratch,
    experts: &mut [u32],
    weights: &mut [f32],
) {
    let n = cfg.experts;
    assert_eq!(logits.len(), n, "router logits");
    assert_eq!(experts.len(), cfg.used, "chosen experts");
    assert_eq!(weights.len(), cfg.used, "expert weights");
    let s = scratch;
    s.scores.clear();
    match cfg.gating {
        Gating::Softmax => {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            s.scores.extend(logits.iter().map(|&l| (l - max).exp()));
            let sum: f32 = s.scores.iter().sum();
            for v in &mut s.scores {
                *v /= sum;
            }
        }
        Gating::Sigmoid => s
            .scores
            .extend(logits.iter().map(|&l| 1.0 / (1.0 + (-l).exp()))),
    }
    s.select.clear();
    s.select.extend_from_slice(&s.scores);
    if let Some(b) = bias {
        assert_eq!(b.len(), n, "score correction bias");
        for (v, &b) in s.select.iter_mut().zip(b) {
            *v += b;
        }
    }
    if cfg.groups > 1 {
        let per = n / cfg.groups;
        s.groups.clear();
        for g in 0..cfg.groups {
            let members = &s.select[g * per..(g + 1) * per];
            let (mut best, mut second) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
            for &v in members {
                let v = if v.is_nan() { f32::NEG_INFINITY } else { v };
                if v > best {
                    second = best;
                    best = v;
                } else if v > second {
                    second = v;
                }
            }
            s.groups.push((best + second, g));
        }
        s.groups.sort_by(|&a, &b| ranks_before(a, b));
        for &(_, g) in &s.groups[cfg.groups_used..] {
            s.select[g * per..(g + 1) * per].fill(f32::NEG_INFINITY);
        }
    }
    s.order.clear();
    s.order.extend(0..n as u32);
    let select = &s.select;
    let cmp = |&a: &u32, &b: &u32| {
        ranks_before(
            (select[a as usize], a as usize),
            (select[b as usize], b as usize),
        )
    };
    if cfg.used < n {
        s.order.select_nth_unstable_by(cfg.used - 1, cmp);
    }
    s.order[..cfg.used].sort_unstable_by(cmp);
    for (i, &e) in s.order[..cfg.used].iter().enumerate() {
        experts[i] = e;
        weights[i] = s.scores[e as usize];
    }
    if cfg.normalize {
        let sum: f32 = weights.iter().sum();
        let sum = sum.max(MIN_WEIGHT_SUM);
        for w in weights.iter_mut() {
            *w /= sum;
        }
    }
    if cfg.scale != 1.0 {
        for w in weights.iter_mut() {
            *w *= cfg.scale;
        }
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
