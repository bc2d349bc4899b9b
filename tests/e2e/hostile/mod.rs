//! Hostile peers and hostile input, against the real binaries, by subject:
//! `liars`, fake peers (threads of this test speaking the peer protocol)
//! that lie about chunks or manifests; `slow`, fakes that trickle chunks
//! or manifests; `silent`, peers that accept and never answer; `busy`,
//! servers at their connection caps; `claims`, false sizes, squatters,
//! made-up names and registration floods; `crowded`, a tracker ten
//! addresses try to fill, 32 clients searching it and slow readers of its
//! biggest reply; `names`, names that look like others and the longest
//! names; `trickle_tracker`, a tracker that trickles a long
//! reply; `input`, raw clients sending the tracker and a peer's chunk
//! server lines over the bound, binary garbage, unknown verbs, absurd
//! arguments, nothing at all, one byte a second, or requests they never
//! read the answers to; `floods`, thousands of connections; `seeder`,
//! cheap ways to make a seeder useless (hoarded promises, trickled `HAVE`
//! bodies, slow readers of 16 MiB chunks); `trees`, folder manifests no
//! downloader may write; `unregister`, who may remove
//! whom from the tracker. Each test checks that the lie is
//! caught, the slowness bounded or the input refused, and that honest
//! traffic carries on meanwhile, byte-identical.
//!
//! Some clients connect from 127.0.0.2 and up, standing for other hosts
//! (see `support::raw`).
//!
//! Tests that print `[figures]` lines feed docs/RELIABILITY.md; see them with
//! `cargo test --test e2e hostile -- --nocapture`.

mod busy;
mod claims;
mod crowded;
mod floods;
mod input;
mod liars;
mod names;
mod seeder;
mod silent;
mod slow;
mod trees;
mod trickle_tracker;
mod unregister;
