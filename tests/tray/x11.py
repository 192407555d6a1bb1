"""Closes an X window the way a window manager's close button does: a WM_DELETE_WINDOW
client message (ICCCM), sent with libX11 through ctypes. Debian's xdotool (2016) has no
`windowclose`, and Xvfb runs no window manager, so the test plays that part itself."""

import ctypes
import ctypes.util

_x = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
_x.XOpenDisplay.restype = ctypes.c_void_p
_x.XOpenDisplay.argtypes = [ctypes.c_char_p]
_x.XInternAtom.restype = ctypes.c_ulong
_x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
_x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
_x.XFlush.argtypes = [ctypes.c_void_p]
_x.XCloseDisplay.argtypes = [ctypes.c_void_p]

CLIENT_MESSAGE = 33


class _ClientMessage(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class _Event(ctypes.Union):
    # XEvent is a union padded to 24 longs.
    _fields_ = [("xclient", _ClientMessage), ("pad", ctypes.c_long * 24)]


def request_close(window_id):
    """Asks the client owning `window_id` to close it (as a user clicking "x")."""
    display = _x.XOpenDisplay(None)
    if not display:
        raise RuntimeError("cannot open the X display")
    try:
        ev = _Event()
        ev.xclient.type = CLIENT_MESSAGE
        ev.xclient.window = window_id
        ev.xclient.message_type = _x.XInternAtom(display, b"WM_PROTOCOLS", 0)
        ev.xclient.format = 32
        ev.xclient.data[0] = _x.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
        ev.xclient.data[1] = 0  # CurrentTime
        if not _x.XSendEvent(display, window_id, 0, 0, ctypes.byref(ev)):
            raise RuntimeError(f"XSendEvent to window {window_id:#x} failed")
        _x.XFlush(display)
    finally:
        _x.XCloseDisplay(display)
