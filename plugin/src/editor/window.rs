//! The editor's window, taken down for good before `gui.destroy` returns.
//!
//! On X11, baseview (0.4.2) runs each window on a thread of its own. Dropping the window asks
//! that thread to stop and then to show the window, and waits for the answer before joining the
//! thread; when the thread's event loop stops first, the answer never comes, the drop gives up
//! ("Request to X11 thread failed") and leaves the thread running, still tearing down OpenGL.
//! A host that unloads the plugin or exits right then crashes inside Mesa on that thread (seen
//! in `tests/tests/clap_editor.rs`, one run in a few). So the window thread holds the sending end
//! of a channel in a thread-local, dropped only as the thread exits, after all of baseview's
//! teardown, and dropping a [`Window`] waits for it.

use std::cell::RefCell;
use std::thread::{self, ThreadId};
use std::time::Duration;

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use nice_plug::editor::dpi::NativeSize;
use nice_plug::editor::{EditorHandle, Modifiers, ParentWindowHandle, SpawnedEditor, VirtualKeyCode};
use nice_plug::nice_warn;
use nice_plug_egui::baseview;
use nice_plug_egui::EguiEditorHandle;

/// The longest `gui.destroy` waits for the window thread; it ends in milliseconds.
const EXIT_LIMIT: Duration = Duration::from_secs(5);

thread_local! {
    /// On a window thread: dropped when the thread exits, which tells the [`Window`].
    static ON_EXIT: RefCell<Option<Sender<()>>> = const { RefCell::new(None) };
}

/// The window thread's end of the exit channel, made where the editor is spawned.
pub struct ExitSignal {
    sender: Sender<()>,
    spawned_on: ThreadId,
}

impl ExitSignal {
    /// Called as the window is built. On a thread of the window's own, the signal is kept until
    /// that thread exits; where the window runs on the host's thread (Windows, macOS) there is
    /// nothing to wait for, and the signal goes now.
    pub fn arm(self) {
        if thread::current().id() != self.spawned_on {
            ON_EXIT.with(|slot| *slot.borrow_mut() = Some(self.sender));
        }
    }
}

/// A pair: the signal for the window's builder, and the waiting end for [`spawned`].
pub fn exit_channel() -> (ExitSignal, Receiver<()>) {
    let (sender, exited) = channel::bounded(0);
    (ExitSignal { sender, spawned_on: thread::current().id() }, exited)
}

/// Wraps an egui editor's window so that dropping it waits for its thread.
pub fn spawned(editor: SpawnedEditor<EguiEditorHandle>, exited: Receiver<()>) -> SpawnedEditor<Handle> {
    SpawnedEditor { handle: Handle(editor.handle), window: Window { window: Some(editor.window), exited } }
}

/// baseview's window, and the news of its thread's exit.
pub struct Window {
    window: Option<baseview::Window>,
    exited: Receiver<()>,
}

impl Window {
    fn inner(&self) -> &baseview::Window {
        self.window.as_ref().expect("the window is only taken when dropped or run")
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        drop(self.window.take());
        if let Err(RecvTimeoutError::Timeout) = self.exited.recv_timeout(EXIT_LIMIT) {
            nice_warn!("restyle: the editor's window thread still runs {EXIT_LIMIT:?} after its window closed");
        }
    }
}

/// The egui editor's handle, for a [`Window`].
pub struct Handle(EguiEditorHandle);

impl EditorHandle for Handle {
    type Window = Window;
    type Error = baseview::Error;

    fn run_until_closed(mut window: Window) -> Result<(), Self::Error> {
        let inner = window.window.take().expect("a window is run once");
        EguiEditorHandle::run_until_closed(inner)
    }

    fn set_parent(&self, parent: ParentWindowHandle, window: &Window) -> Result<(), Self::Error> {
        self.0.set_parent(parent, window.inner())
    }

    fn show(&self, window: &Window) -> Result<(), Self::Error> {
        self.0.show(window.inner())
    }

    fn hide(&self, window: &Window) -> Result<(), Self::Error> {
        self.0.hide(window.inner())
    }

    fn set_size(&self, new_size: NativeSize<u32>, window: &Window) -> Result<(), Self::Error> {
        self.0.set_size(new_size, window.inner())
    }

    fn host_main_thread_callback(&self, window: &Window) {
        self.0.host_main_thread_callback(window.inner());
    }

    fn adjust_size(&self, new_size: NativeSize<u32>, window: &Window) -> Option<NativeSize<u32>> {
        self.0.adjust_size(new_size, window.inner())
    }

    fn set_fallback_scale_factor(&self, scale_factor: f64, window: &Window) -> Result<(), Self::Error> {
        self.0.set_fallback_scale_factor(scale_factor, window.inner())
    }

    fn on_virtual_key_from_host(&self, key_code: VirtualKeyCode, is_down: bool, modifiers: Modifiers) -> bool {
        self.0.on_virtual_key_from_host(key_code, is_down, modifiers)
    }

    fn state_changed(&self) {
        self.0.state_changed();
    }

    fn param_value_changed(&self, id: &str, normalized_value: f32) {
        self.0.param_value_changed(id, normalized_value);
    }

    fn param_modulation_changed(&self, id: &str, modulation_offset: f32) {
        self.0.param_modulation_changed(id, modulation_offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_ends_when_the_window_thread_exits_and_not_before() {
        let (signal, exited) = exit_channel();
        let (release, released) = channel::bounded::<()>(0);
        let thread = thread::spawn(move || {
            signal.arm();
            released.recv().ok();
        });
        assert_eq!(
            exited.recv_timeout(Duration::from_millis(100)),
            Err(RecvTimeoutError::Timeout),
            "the signal went while its thread still ran"
        );
        release.send(()).expect("the thread waits for this");
        assert_eq!(exited.recv_timeout(EXIT_LIMIT), Err(RecvTimeoutError::Disconnected));
        thread.join().expect("the thread ends");
    }

    #[test]
    fn a_window_on_the_spawning_thread_is_not_waited_for() {
        let (signal, exited) = exit_channel();
        signal.arm();
        assert_eq!(exited.recv_timeout(Duration::ZERO), Err(RecvTimeoutError::Disconnected));
    }
}
