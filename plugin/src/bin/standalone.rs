//! Restyle as a program of its own: the plugin and its editor, connected to JACK or ALSA (or to
//! a dummy backend with `--backend dummy`), so that anyone can try it without a DAW.

use nice_plug::prelude::*;

fn main() {
    nice_export_standalone::<restyle::Restyle>();
}
