//! Scheduling: which worker runs which task, on which resource slot. Tasks wait in one queue;
//! `--parallel N` workers take them in order, each keeping its task's interleaved rounds.
//! A worker holds a [`Slot`] from the [`SlotPool`] while it runs, so no two attempts running at
//! once share a slot's devices.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

/// What an attempt may use beyond the host: today the GPU device ids of its slot (empty: the
/// suite's default GPU request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    pub gpus: Vec<String>,
}

/// The slots attempts share. Without slots every lease is the empty slot, at once.
pub struct SlotPool {
    free: Mutex<Vec<Slot>>,
    returned: Condvar,
    limited: bool,
}

impl SlotPool {
    pub fn new(slots: Vec<Slot>) -> SlotPool {
        SlotPool {
            limited: !slots.is_empty(),
            // Handed out from the end: reversed so the first slot goes first.
            free: Mutex::new(slots.into_iter().rev().collect()),
            returned: Condvar::new(),
        }
    }

    /// Takes a slot, waiting until one is free; it returns to the pool when the lease drops.
    pub fn acquire(&self) -> SlotLease<'_> {
        if !self.limited {
            return SlotLease {
                pool: self,
                slot: Some(Slot::default()),
            };
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(slot) = free.pop() {
                return SlotLease {
                    pool: self,
                    slot: Some(slot),
                };
            }
            free = self.returned.wait(free).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A slot taken from a pool.
pub struct SlotLease<'a> {
    pool: &'a SlotPool,
    slot: Option<Slot>,
}

impl SlotLease<'_> {
    pub fn slot(&self) -> &Slot {
        // Set at creation, taken only by drop.
        self.slot.as_ref().unwrap_or(&EMPTY)
    }
}

static EMPTY: Slot = Slot { gpus: Vec::new() };

impl Drop for SlotLease<'_> {
    fn drop(&mut self) {
        if let (true, Some(slot)) = (self.pool.limited, self.slot.take()) {
            self.pool
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(slot);
            self.pool.returned.notify_one();
        }
    }
}

/// Tasks waiting for a worker, in plan order.
pub struct TaskQueue<T> {
    waiting: Mutex<VecDeque<T>>,
}

impl<T> TaskQueue<T> {
    pub fn new(tasks: impl IntoIterator<Item = T>) -> TaskQueue<T> {
        TaskQueue {
            waiting: Mutex::new(tasks.into_iter().collect()),
        }
    }

    pub fn len(&self) -> usize {
        self.waiting.lock().map(|q| q.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn next(&self) -> Option<T> {
        self.waiting.lock().ok().and_then(|mut q| q.pop_front())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: &str) -> Slot {
        Slot {
            gpus: vec![id.into()],
        }
    }

    #[test]
    fn slots_are_leased_once_and_come_back() {
        let pool = SlotPool::new(vec![slot("0"), slot("1")]);
        let a = pool.acquire();
        let b = pool.acquire();
        assert_eq!((a.slot(), b.slot()), (&slot("0"), &slot("1")));
        drop(a);
        let c = pool.acquire();
        assert_eq!(c.slot(), &slot("0"));
    }

    #[test]
    fn a_worker_waits_for_a_free_slot() {
        let pool = SlotPool::new(vec![slot("0")]);
        let held = pool.acquire();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| pool.acquire().slot().clone());
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "no slot is free yet");
            drop(held);
            assert_eq!(waiter.join().unwrap(), slot("0"));
        });
    }

    #[test]
    fn without_slots_every_lease_is_the_empty_slot() {
        let pool = SlotPool::new(Vec::new());
        let leases: Vec<_> = (0..3).map(|_| pool.acquire()).collect();
        assert!(leases.iter().all(|l| l.slot().gpus.is_empty()));
    }

    #[test]
    fn tasks_leave_the_queue_in_order() {
        let queue = TaskQueue::new(["a", "b"]);
        assert_eq!(
            (queue.next(), queue.next(), queue.next()),
            (Some("a"), Some("b"), None)
        );
    }
}
