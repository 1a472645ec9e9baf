//! Clean-up that runs however a test ends (a passing return or a panic).

/// Runs its closure once, when dropped: unlinking a shared-memory segment, removing files.
///
/// ```ignore
/// let _unlink = ringbolt_testkit::guard::OnDrop::new(|| { let _ = Segment::unlink(&name); });
/// ```
pub struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> OnDrop<F> {
    /// A guard that runs `f` when dropped.
    #[must_use]
    pub fn new(f: F) -> Self {
        OnDrop(f)
    }
}

impl<F: FnMut()> std::fmt::Debug for OnDrop<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnDrop")
    }
}

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}
