//! Scheduler tests with fake requests: no model, only token ids and block accounting.

use super::*;

fn seq(id: u64, len: usize, base: u32) -> SeqState {
    SeqState::new(RequestId(id), (0..len as u32).map(|t| base + t).collect())
}

/// Runs one step: schedules, marks the chunks computed, and appends token 7 to every
/// sequence whose logits were produced. Returns the plan.
fn step(s: &mut Scheduler) -> StepPlan {
    let plan = s.schedule();
    s.complete(&plan.chunks);
    for c in &plan.chunks {
        if c.wants_logits {
            s.running_mut()[c.seq].tokens.push(7);
        }
    }
    plan
}

fn lens(plan: &StepPlan, s: &Scheduler) -> Vec<(u64, usize, bool)> {
    plan.chunks
        .iter()
        .map(|c| (s.running()[c.seq].id.0, c.len, c.wants_logits))
        .collect()
}

#[test]
fn long_prompt_is_chunked_under_the_budget() {
    let mut s = Scheduler::new(16, 4, 8);
    s.add(seq(1, 20, 100));
    let p = step(&mut s);
    assert_eq!(lens(&p, &s), vec![(1, 8, false)]);
    assert_eq!(p.admitted, vec![(RequestId(1), 0)]);
    assert_eq!(lens(&step(&mut s), &s), vec![(1, 8, false)]);
    assert_eq!(lens(&step(&mut s), &s), vec![(1, 4, true)]);
    // Now decoding: one token per step.
    assert_eq!(lens(&step(&mut s), &s), vec![(1, 1, true)]);
    assert_eq!(s.running()[0].num_computed, 21);
    assert_eq!(s.running()[0].blocks.len(), 2);
}

#[test]
fn decoding_sequences_run_before_prompt_chunks() {
    let mut s = Scheduler::new(64, 4, 8);
    s.add(seq(1, 3, 0));
    step(&mut s); // 1 prefilled, now decoding
    s.add(seq(2, 40, 1000));
    // 2 is admitted with the budget left after 1's decode token.
    assert_eq!(lens(&step(&mut s), &s), vec![(1, 1, true), (2, 7, false)]);
    // Every later step still serves 1 first: 2 never takes the whole budget.
    for _ in 0..4 {
        let p = step(&mut s);
        assert_eq!(lens(&p, &s)[0], (1, 1, true));
        assert!(p.chunks.iter().map(|c| c.len).sum::<usize>() <= 8);
    }
}

#[test]
fn max_seqs_limits_the_running_batch() {
    let mut s = Scheduler::new(64, 2, 64);
    for id in 1..=3 {
        s.add(seq(id, 4, 0));
    }
    let p = step(&mut s);
    assert_eq!(p.chunks.len(), 2);
    assert_eq!(s.num_waiting(), 1);
    s.remove(RequestId(1));
    let p = step(&mut s);
    assert_eq!(p.admitted, vec![(RequestId(3), 0)]);
}

#[test]
fn repeated_prefix_is_served_from_cache() {
    let mut s = Scheduler::new(16, 4, 256);
    s.add(seq(1, 40, 500));
    step(&mut s);
    s.remove(RequestId(1));
    // Same first 36 tokens, then different ones: two full blocks (32 tokens) match.
    let mut toks: Vec<u32> = (0..36).map(|t| 500 + t).collect();
    toks.extend([1, 2, 3]);
    s.add(SeqState::new(RequestId(2), toks));
    let p = step(&mut s);
    assert_eq!(p.admitted, vec![(RequestId(2), 32)]);
    assert_eq!(lens(&p, &s), vec![(2, 7, true)]);
}

#[test]
fn a_fully_cached_prompt_still_computes_its_last_token() {
    let mut s = Scheduler::new(16, 4, 256);
    s.add(seq(1, 32, 0));
    step(&mut s);
    s.remove(RequestId(1));
    s.add(seq(2, 32, 0));
    let p = step(&mut s);
    // Only the first block may come from the cache: the last token's logits are needed.
    assert_eq!(p.admitted, vec![(RequestId(2), 16)]);
    assert_eq!(lens(&p, &s), vec![(2, 16, true)]);
}

#[test]
fn different_prefix_before_a_block_does_not_match() {
    let mut s = Scheduler::new(16, 4, 256);
    s.add(seq(1, 40, 0));
    step(&mut s);
    s.remove(RequestId(1));
    // Block 1's tokens are equal but block 0's differ: nothing may match.
    let mut toks: Vec<u32> = (0..40).collect();
    toks[3] = 9999;
    s.add(SeqState::new(RequestId(2), toks));
    assert_eq!(step(&mut s).admitted, vec![(RequestId(2), 0)]);
}

#[test]
fn out_of_blocks_preempts_the_newest_and_resumes_it_later() {
    // 4 blocks = 64 positions; two sequences that each grow to 48 positions cannot both fit.
    let mut s = Scheduler::new(4, 4, 256);
    s.add(seq(1, 30, 0));
    s.add(seq(2, 30, 1000));
    step(&mut s); // both prefilled: 2 blocks each
    let mut preempted = Vec::new();
    for _ in 0..20 {
        let p = step(&mut s);
        preempted.extend(p.preempted);
        assert!(s.pool().num_used() <= 4);
    }
    // The newest (2) made room for the oldest (1), which kept running.
    assert_eq!(preempted.first(), Some(&RequestId(2)));
    assert!(s.is_waiting(RequestId(2)));
    assert!(s.running()[0].id == RequestId(1));
    let before = s.running()[0].tokens.len();
    s.remove(RequestId(1));
    // 2 comes back with its computed full blocks found in the cache.
    let p = step(&mut s);
    assert!(
        p.admitted.is_empty(),
        "2 was admitted before: no new admission event"
    );
    assert_eq!(s.running()[0].id, RequestId(2));
    let c = p.chunks[0];
    assert!(
        c.len < s.running()[0].tokens.len(),
        "some blocks were cached"
    );
    assert!(before > 30);
}

#[test]
fn admission_waits_when_blocks_are_short() {
    // 3 blocks; 1 takes 2 blocks; 2 needs 2 blocks for its prompt: it must wait.
    let mut s = Scheduler::new(3, 4, 256);
    s.add(seq(1, 20, 0));
    step(&mut s);
    s.add(seq(2, 20, 1000));
    let p = step(&mut s);
    assert!(p.admitted.is_empty());
    assert_eq!(lens(&p, &s), vec![(1, 1, true)]);
    assert!(s.is_waiting(RequestId(2)));
    s.remove(RequestId(1));
    assert_eq!(step(&mut s).admitted, vec![(RequestId(2), 0)]);
    assert_eq!(s.pool().num_used(), 2);
}

#[test]
fn removing_everything_frees_every_block() {
    let mut s = Scheduler::new(8, 4, 256);
    s.add(seq(1, 40, 0));
    s.add(seq(2, 20, 0));
    step(&mut s);
    s.remove(RequestId(1));
    s.remove(RequestId(2));
    assert!(s.is_idle());
    assert_eq!(s.pool().num_used(), 0);
    assert_eq!(s.pool().num_available(), 8);
}

#[test]
fn eviction_keeps_the_longest_reachable_prefix() {
    // 6 blocks. Request 1 leaves four full blocks (a 64-token chain) in the cache.
    let mut s = Scheduler::new(6, 4, 256);
    s.add(seq(1, 65, 0));
    step(&mut s);
    s.remove(RequestId(1));
    assert_eq!(s.pool().num_cached_free(), 4);
    // Request 2 (other tokens) needs four blocks: the two plain free ones and two evicted
    // cached ones. Evicting the chain's tail keeps its first two blocks reachable.
    s.add(seq(2, 49, 5000));
    step(&mut s);
    s.remove(RequestId(2));
    s.add(seq(3, 65, 0));
    let p = step(&mut s);
    assert_eq!(
        p.admitted,
        vec![(RequestId(3), 32)],
        "the first two blocks of the chain survive"
    );
}
