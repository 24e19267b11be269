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

#[test]
fn preemption_takes_blocks_only_from_newer_sequences() {
    // 3 blocks. 1 arrived first but is still prefilling; 2 arrived later and is decoding.
    // (The queue is reordered by hand so that 2 is admitted first: the victim rule must
    // follow arrival, not positions in the queue or the running batch.)
    let mut s = Scheduler::new(3, 4, 36);
    s.add(seq(1, 40, 0));
    s.add(seq(2, 16, 1000));
    s.waiting.swap(0, 1);
    let p = step(&mut s);
    assert_eq!(lens(&p, &s), vec![(2, 16, true), (1, 20, false)]);
    assert_eq!(s.pool().num_available(), 0);
    // 2 needs a second block for its next token and none is free. It must not take 1's
    // blocks: 2 is preempted, and 1 goes on with its prompt.
    let p = step(&mut s);
    assert_eq!(p.preempted, vec![RequestId(2)], "the newer sequence yields");
    assert_eq!(lens(&p, &s), vec![(1, 20, true)]);
    assert!(s.is_waiting(RequestId(2)));
}

#[test]
fn a_planned_newer_sequence_gives_its_blocks_to_an_older_one() {
    // 4 blocks, 20-token steps. 2 (newer) is admitted first by hand and decodes; 1 (older)
    // prefills in chunks. When 1 needs a block and none is free, 2 — already planned for
    // the step — is preempted and its chunk withdrawn; 1 is never the one that waits.
    let mut s = Scheduler::new(4, 4, 20);
    s.add(seq(1, 40, 0));
    s.add(seq(2, 16, 1000));
    s.waiting.swap(0, 1);
    assert_eq!(lens(&step(&mut s), &s), vec![(2, 16, true), (1, 4, false)]);
    assert_eq!(lens(&step(&mut s), &s), vec![(2, 1, true), (1, 19, false)]);
    let p = step(&mut s);
    assert_eq!(p.preempted, vec![RequestId(2)]);
    assert_eq!(lens(&p, &s), vec![(1, 17, true)]);
    assert_eq!(s.running().len(), 1);
}

#[test]
fn a_long_request_is_not_starved_by_a_stream_of_short_ones() {
    // The pool holds one long request (100-token prompt + 20 generated = 8 blocks) and
    // little more; short requests keep arriving, each generating 6 tokens. The long one
    // arrived first, so it must never be preempted and must finish.
    let mut s = Scheduler::new(9, 8, 16);
    s.add(seq(1, 100, 0));
    let mut generated: std::collections::HashMap<u64, usize> = Default::default();
    let mut next_id = 2;
    let mut long_done = false;
    for round in 0..400 {
        if round % 2 == 0 {
            s.add(seq(
                next_id,
                6 + (next_id % 7) as usize,
                1000 * next_id as u32,
            ));
            next_id += 1;
        }
        let p = step(&mut s);
        assert!(
            !p.preempted.contains(&RequestId(1)),
            "round {round}: the oldest request was preempted"
        );
        // Every preempted sequence is newer than every sequence that ran this step.
        let ran: Vec<u64> = p.chunks.iter().map(|c| s.running()[c.seq].id.0).collect();
        for v in &p.preempted {
            assert!(
                ran.iter().all(|&r| r < v.0),
                "round {round}: {v} preempted, {ran:?} ran"
            );
        }
        for c in &p.chunks {
            if c.wants_logits {
                *generated.entry(s.running()[c.seq].id.0).or_default() += 1;
            }
        }
        let finished: Vec<u64> = generated
            .iter()
            .filter(|&(&id, &n)| n >= if id == 1 { 20 } else { 6 })
            .map(|(&id, _)| id)
            .collect();
        for id in finished {
            generated.remove(&id);
            s.remove(RequestId(id));
            long_done |= id == 1;
        }
        if long_done {
            break;
        }
    }
    assert!(long_done, "the long request did not finish in 400 steps");
    assert!(s.pool().num_used() <= 9);
}
