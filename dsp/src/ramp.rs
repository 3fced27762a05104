//! A control's linear glide toward its newest value, so a knob move or an automation step never
//! clicks.
//!
//! The glide restarts only when the target moves. Hosts send a parameter's value with every block
//! whether it changed or not; a glide restarted each time would last as many blocks as it has
//! steps left and so depend on the host's block size, where it must last its fixed time.

pub struct Ramp {
    current: f32,
    target: f32,
    step: f32,
    steps_left: u32,
    /// Samples a glide takes.
    length: u32,
}

impl Ramp {
    /// Starts at `value`, with glides of `length` samples (0: every change is immediate).
    pub fn new(value: f32, length: usize) -> Self {
        Self { current: value, target: value, step: 0.0, steps_left: 0, length: length.min(u32::MAX as usize) as u32 }
    }

    /// Goes to `value` at once, ending any glide.
    pub fn jump(&mut self, value: f32) {
        *self = Self::new(value, self.length as usize);
    }

    /// Glides from where it is now to `target` over the glide length, unless `target` is where it
    /// is already going.
    pub fn set_target(&mut self, target: f32) {
        if target == self.target {
            return;
        }
        self.target = target;
        if self.length == 0 {
            self.current = target;
            return;
        }
        self.steps_left = self.length;
        self.step = (target - self.current) / self.length as f32;
    }

    /// The value for the next sample.
    pub fn next_sample(&mut self) -> f32 {
        if self.steps_left > 0 {
            self.steps_left -= 1;
            // The last step lands on the target exactly, whatever the rounding of the steps.
            self.current = if self.steps_left == 0 { self.target } else { self.current + self.step };
        }
        self.current
    }

    /// The value the glide is heading for.
    pub fn target(&self) -> f32 {
        self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_glide_takes_its_length_whatever_the_block_size() {
        for block in [1, 7, 64, 480, 4096] {
            let mut ramp = Ramp::new(1.0, 480);
            let mut values = Vec::new();
            while values.len() < 2000 {
                // A host repeats the value every block.
                ramp.set_target(0.0);
                values.extend((0..block).map(|_| ramp.next_sample()));
            }
            let first_at_target = values.iter().position(|&v| v == 0.0).unwrap();
            assert_eq!(first_at_target, 479, "blocks of {block}");
            assert!((values[239] - 0.5).abs() < 1e-4, "blocks of {block}: halfway {}", values[239]);
            assert!(values.windows(2).all(|w| w[1] <= w[0]), "blocks of {block}: monotonic");
        }
    }

    #[test]
    fn a_new_target_mid_glide_starts_from_where_it_is() {
        let mut ramp = Ramp::new(0.0, 100);
        ramp.set_target(1.0);
        let halfway = (0..50).map(|_| ramp.next_sample()).last().unwrap();
        ramp.set_target(0.0);
        let next = ramp.next_sample();
        assert!((next - halfway).abs() < 0.011, "no jump: {halfway} then {next}");
        assert_eq!((0..99).map(|_| ramp.next_sample()).last(), Some(0.0));
    }

    #[test]
    fn jump_and_zero_length_change_at_once() {
        let mut ramp = Ramp::new(0.0, 100);
        ramp.set_target(1.0);
        ramp.next_sample();
        ramp.jump(0.25);
        assert_eq!((ramp.next_sample(), ramp.target()), (0.25, 0.25));
        let mut instant = Ramp::new(0.0, 0);
        instant.set_target(0.75);
        assert_eq!(instant.next_sample(), 0.75);
    }
}
