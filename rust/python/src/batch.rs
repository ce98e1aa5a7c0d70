//! Batches: many values judged by the core, on two threads or more when it pays.
//!
//! Reading a value (iterating, finding its bytes) and delivering its result (a byte, or a
//! `FromHeader` object) need the GIL; judging it does not. So this thread reads values
//! and delivers results while helper threads judge the values already read, piece by
//! piece, right behind the reading; when this thread has read everything, it judges the
//! pieces nobody has taken yet, without the GIL. Helpers are started when a large batch
//! has a piece read and no helper is running, and stop after a short while with nothing
//! to judge: they never wait for this thread (see [`Round::help`]).
//!
//! A panic while judging (a bug) is caught where it happens, on whichever thread: the
//! piece is marked failed (its slot is set, so nobody waits for it), no piece is taken
//! after it, and the batch raises `fromguard.InternalError` when it reaches that piece.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator};

use crate::errors::Panic;
use crate::{held, in_place, sized, to_bytes};

// The three sizes below were chosen by measuring: `python benches/compare.py` prints the
// batch calls (`verdicts`, `parse_many`) at 4,096, 16,384 and 90,000 values on one core
// and on two, beside what two threads of a C workload get on the machine at that moment.
// Run it with the constant changed to see whether a value still holds on a machine.

/// Batches of at least this many values are shared with helper threads; below it, waking
/// them costs more than it saves: at 4,096 values, two cores gave about what one did
/// (waking a helper takes tens of microseconds or more on a busy machine).
pub(crate) const PARALLEL_VALUES: usize = 8192;

/// Values are read and judged in pieces of this many: the unit a thread takes at a time.
/// Each piece costs its own hand-over between threads (its slots, allocations and
/// atomics): smaller pieces ran slower at 90,000 values, the more so the smaller; larger
/// ones gained little, and leave more to the last thread at the end of a batch.
pub(crate) const PIECE_VALUES: usize = 512;

/// A batch is read in rounds of at most this many pieces (128 Ki values, about 3 MiB of
/// references and slices), so that it holds one round at a time whatever its size. Each
/// round ends with the helpers stopped while this thread delivers the round's last
/// pieces and releases its values, so a round must be long: with rounds of 64 Ki values,
/// a batch of 90,000 took two rounds and two cores gained clearly less over one than in
/// one round.
const ROUND_PIECES: usize = 256;

/// The threads that judge beside the caller's: one fewer than the CPUs this process may
/// use (its affinity and cgroup quota counted), none on one CPU. Not rayon's global pool,
/// which has a thread per CPU: with the caller's thread that is one thread too many, and
/// the caller, whose reading and delivering nobody else can do, loses its CPU to it.
pub(crate) fn helpers() -> Option<&'static rayon::ThreadPool> {
    static HELPERS: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    HELPERS
        .get_or_init(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let threads = cpus.checked_sub(1).filter(|&n| n > 0)?;
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("fromguard-batch-{i}"))
                .build()
                .ok()
        })
        .as_ref()
}

/// `judge(input)` for every value of `values`; `deliver(value, judgement)` is called for
/// each, in order, under the GIL. A panic in `judge` raises `InternalError` naming
/// `operation` and the value.
pub(crate) fn judge_batch<'py, T: Copy + Send + Sync>(
    py: Python<'py>,
    operation: &'static str,
    values: &Bound<'py, PyAny>,
    judge: impl Fn(&[u8]) -> T + Sync,
    mut deliver: impl FnMut(&Bound<'py, PyAny>, T) -> PyResult<()>,
) -> PyResult<()> {
    let length = values.len().ok();
    // The helpers start once the batch is known to be large: at once when it says how
    // long it is, else when that many values have been read.
    let mut helped_from = match length {
        Some(length) if length >= PARALLEL_VALUES => Some(0),
        Some(_) => None,
        None => Some(PARALLEL_VALUES / PIECE_VALUES),
    };
    // The first round's slots are allocated for the batch's size when it is known (a
    // batch of one value should not pay for a full round), else for the values from which
    // helpers start.
    let mut pieces = length
        .map_or(PARALLEL_VALUES, |length| length.max(1))
        .div_ceil(PIECE_VALUES);
    // No scope at all for a batch too small to be helped: entering one costs a microsecond.
    let pool = helpers().filter(|_| helped_from.is_some());
    let mut iterator = values.try_iter()?;
    let mut read = 0;
    loop {
        pieces = pieces.min(ROUND_PIECES);
        let owners: Vec<Held<'py>> = (0..pieces).map(|_| Held::default()).collect();
        let round = Round::new(operation, read, pieces);
        let mut run = |start_helpers: &mut dyn FnMut(usize)| {
            round.run(
                py,
                &mut iterator,
                &owners,
                &judge,
                &mut deliver,
                start_helpers,
            )
        };
        let more = match pool {
            // This thread, not the pool, runs the body, holding the GIL.
            Some(pool) => pool.in_place_scope(|scope| {
                run(&mut |piece| {
                    let wanted = helped_from.is_some_and(|from| piece >= from);
                    if wanted && round.helpers.load(Ordering::Acquire) == 0 {
                        let threads = pool.current_num_threads();
                        round.helpers.store(threads, Ordering::Release);
                        for _ in 0..threads {
                            scope.spawn(|_| round.help(&judge));
                        }
                    }
                })
            }),
            None => run(&mut |_| {}),
        }?;
        if !more {
            return Ok(());
        }
        // The next round is large enough already. Its slots are for what the batch's
        // length says is left (one piece, to find the end, when nothing is).
        read += pieces * PIECE_VALUES;
        helped_from = helped_from.map(|_| 0);
        pieces = length.map_or(ROUND_PIECES, |length| {
            length.saturating_sub(read).div_ceil(PIECE_VALUES).max(1)
        });
    }
}

/// A piece's values, kept alive while threads read their bytes.
#[derive(Default)]
struct Held<'py> {
    values: OnceLock<Vec<Bound<'py, PyAny>>>,
    /// The values encoded, when one of them cannot be read in place (see [`in_place`]).
    encoded: OnceLock<Vec<Bound<'py, PyBytes>>>,
}

impl<'py> Held<'py> {
    /// Holds a piece's values; returns their bytes.
    fn hold(&self, values: Vec<Bound<'py, PyAny>>) -> PyResult<Vec<&[u8]>> {
        let values = self.values.get_or_init(|| values);
        // Sized at once: collecting into an `Option<Vec>` would grow it step by step.
        let mut inputs = Vec::with_capacity(values.len());
        inputs.extend(values.iter().map_while(in_place));
        if inputs.len() == values.len() {
            return Ok(inputs);
        }
        let encoded = values.iter().map(to_bytes).collect::<PyResult<_>>()?;
        let encoded = self.encoded.get_or_init(|| encoded);
        Ok(encoded.iter().map(|bytes| bytes.as_bytes()).collect())
    }
}

/// What became of a piece: its judgements, or the panic that stopped its judging.
type Judged<T> = Result<Vec<T>, Panic>;

/// One round of pieces: the bytes of each piece read, and its judgements.
struct Round<'a, T> {
    /// The batch call, for the error a panic raises.
    operation: &'static str,
    /// The values read in the rounds before: the index in the batch of this round's first.
    first_value: usize,
    inputs: Vec<OnceLock<Vec<&'a [u8]>>>,
    /// Set once for each piece taken, by the thread that took it, whatever happens: a
    /// thread waiting for a piece always sees it end.
    judged: Vec<OnceLock<Judged<T>>>,
    /// Set when reading is over: the pieces with inputs are all there are.
    finished: AtomicBool,
    /// The first piece nobody has taken to judge (past the last piece once the round is
    /// abandoned: see [`Round::abandon`]).
    untaken: AtomicUsize,
    /// The helper jobs started and not done: this thread starts more only when none is.
    helpers: AtomicUsize,
}

/// How many times a helper with nothing to judge looks again (yielding the CPU between
/// looks: tens of microseconds in all on an idle CPU, more when other threads want it)
/// before it stops.
const HELPER_PATIENCE: u32 = 200;

impl<'a, T: Copy + Send + Sync> Round<'a, T> {
    fn new(operation: &'static str, first_value: usize, pieces: usize) -> Self {
        Round {
            operation,
            first_value,
            inputs: (0..pieces).map(|_| OnceLock::new()).collect(),
            judged: (0..pieces).map(|_| OnceLock::new()).collect(),
            finished: AtomicBool::new(false),
            untaken: AtomicUsize::new(0),
            helpers: AtomicUsize::new(0),
        }
    }

    /// The next piece nobody has taken, if it has been read; taken.
    fn take_read_piece(&self) -> Option<(usize, &[&'a [u8]])> {
        loop {
            let piece = self.untaken.load(Ordering::Acquire);
            let inputs = self.inputs.get(piece)?.get()?;
            let taken = self.untaken.compare_exchange(
                piece,
                piece + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if taken.is_ok() {
                return Some((piece, inputs));
            }
        }
    }

    /// A helper's part: judge the pieces read that nobody has taken, looking again a
    /// little while for the next one; then stop. A helper never waits long for this
    /// thread: this thread may be waiting for the pool itself (a batch made inside the
    /// iterable of another, or batches on several Python threads, one of them holding the
    /// GIL that another's reading needs), and a waiting helper would keep a pool thread
    /// from the job that ends that wait. What no helper takes, this thread judges at the
    /// end, and it starts helpers again when none is left.
    fn help(&self, judge: &(impl Fn(&[u8]) -> T + Sync)) {
        let mut idle = 0;
        loop {
            if let Some((piece, inputs)) = self.take_read_piece() {
                self.judge_piece(piece, inputs, judge);
                idle = 0;
            } else if self.finished.load(Ordering::Acquire) || idle >= HELPER_PATIENCE {
                break;
            } else {
                idle += 1;
                std::thread::yield_now();
            }
        }
        self.helpers.fetch_sub(1, Ordering::AcqRel);
    }

    /// No piece is taken any more: the batch raises. Pieces taken already are judged to
    /// the end (their slots are set), so that no thread is left waiting.
    fn abandon(&self) {
        self.untaken.store(self.inputs.len(), Ordering::Release);
    }

    /// Judges a piece taken, and sets its slot: to the judgements, or to the panic that
    /// stopped them (and the round is abandoned).
    fn judge_piece(&self, piece: usize, inputs: &[&[u8]], judge: impl Fn(&[u8]) -> T) {
        // The value being judged, should it panic.
        let mut judging = 0;
        let judged = catch_unwind(AssertUnwindSafe(|| {
            let judge_one = |(at, input): (usize, &&[u8])| {
                judging = at;
                judge(input)
            };
            inputs.iter().enumerate().map(judge_one).collect()
        }));
        let judged = judged.map_err(|payload| {
            self.abandon();
            Panic::caught(
                self.operation,
                inputs.get(judging).map(|input| input.len()),
                Some(self.first_value + piece * PIECE_VALUES + judging),
                payload.as_ref(),
            )
        });
        if let Some(slot) = self.judged.get(piece) {
            // A piece is taken once, so its slot is empty.
            let _ = slot.set(judged);
        }
    }

    /// This thread's part: read the round's values piece by piece, delivering each piece
    /// as soon as it is judged; then judge what nobody has taken and deliver the rest.
    /// Returns whether the iterable may have more values.
    fn run<'py>(
        &self,
        py: Python<'py>,
        iterator: &mut Bound<'py, PyIterator>,
        owners: &'a [Held<'py>],
        judge: &(impl Fn(&[u8]) -> T + Sync),
        deliver: &mut impl FnMut(&Bound<'py, PyAny>, T) -> PyResult<()>,
        start_helpers: &mut dyn FnMut(usize),
    ) -> PyResult<bool> {
        let read = self.read_pieces(py, iterator, owners, deliver, start_helpers);
        // Whatever happened, the round's pieces are known now: the helpers may stop.
        self.finished.store(true, Ordering::Release);
        let ran = read.and_then(|(pieces, delivered, more)| {
            self.deliver_rest(py, pieces, delivered, owners, judge, deliver)?;
            Ok(more)
        });
        if ran.is_err() {
            self.abandon();
        }
        ran
    }

    /// Delivers the pieces from `delivered` to `pieces`, judging those nobody has taken
    /// and waiting for the others.
    fn deliver_rest<'py>(
        &self,
        py: Python<'py>,
        pieces: usize,
        mut delivered: usize,
        owners: &'a [Held<'py>],
        judge: &(impl Fn(&[u8]) -> T + Sync),
        deliver: &mut impl FnMut(&Bound<'py, PyAny>, T) -> PyResult<()>,
    ) -> PyResult<()> {
        while delivered < pieces {
            let slot = self.judged.get(delivered);
            if let Some(judged) = slot.and_then(OnceLock::get) {
                deliver_piece(py, owners, delivered, judged, deliver)?;
                delivered += 1;
            } else if let Some((piece, inputs)) = self.take_read_piece() {
                let bytes = inputs.iter().map(|input| input.len()).sum();
                sized(py, bytes, || self.judge_piece(piece, inputs, judge));
            } else {
                // All taken: a helper is judging the piece to deliver next (a piece of
                // long values may take a while: without the GIL). It sets the slot even
                // if it panics; and a piece after one that panicked is never waited for,
                // since that one's error is raised first.
                py.detach(|| {
                    let mut waited = 0;
                    while slot.and_then(OnceLock::get).is_none() {
                        pause(&mut waited);
                    }
                });
            }
        }
        Ok(())
    }

    /// Reads up to a round of pieces, publishing each as it is complete and delivering
    /// the pieces judged meanwhile. Returns the pieces read, the pieces delivered and
    /// whether the iterable may have more values.
    fn read_pieces<'py>(
        &self,
        py: Python<'py>,
        iterator: &mut Bound<'py, PyIterator>,
        owners: &'a [Held<'py>],
        deliver: &mut impl FnMut(&Bound<'py, PyAny>, T) -> PyResult<()>,
        start_helpers: &mut dyn FnMut(usize),
    ) -> PyResult<(usize, usize, bool)> {
        let mut delivered = 0;
        for (piece, (owner, inputs)) in owners.iter().zip(&self.inputs).enumerate() {
            let mut values = Vec::with_capacity(PIECE_VALUES);
            for value in iterator.by_ref().take(PIECE_VALUES) {
                values.push(held(value?)?);
            }
            if values.is_empty() {
                return Ok((piece, delivered, false));
            }
            let full = values.len() == PIECE_VALUES;
            let _ = inputs.set(owner.hold(values)?);
            start_helpers(piece);
            while let Some(judged) = self.judged.get(delivered).and_then(OnceLock::get) {
                deliver_piece(py, owners, delivered, judged, deliver)?;
                delivered += 1;
            }
            if !full {
                return Ok((piece + 1, delivered, false));
            }
        }
        Ok((owners.len(), delivered, true))
    }
}

/// A wait for the other thread, `waited` times before: yield the CPU at first, then sleep
/// a little, so that a helper whose reader is held up (waiting for the GIL, say) does not
/// keep a core busy.
fn pause(waited: &mut u32) {
    *waited = waited.saturating_add(1);
    if *waited < 1000 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

/// Delivers the values of `piece` with their judgements, or raises the panic that
/// stopped them.
fn deliver_piece<'py, T: Copy>(
    py: Python<'py>,
    owners: &[Held<'py>],
    piece: usize,
    judged: &Judged<T>,
    deliver: &mut impl FnMut(&Bound<'py, PyAny>, T) -> PyResult<()>,
) -> PyResult<()> {
    let judgements = judged.as_ref().map_err(|panic| panic.to_py_err(py))?;
    let values = owners.get(piece).and_then(|held| held.values.get());
    for (value, judgement) in values.into_iter().flatten().zip(judgements) {
        deliver(value, *judgement)?;
    }
    Ok(())
}
