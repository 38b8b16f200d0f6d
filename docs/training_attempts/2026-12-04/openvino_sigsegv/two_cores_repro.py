"""Minimal repro: OpenVINO CPU plugin instances (one per ov.Core) each install a sigaltstack on the
creating thread and restore the previous one on destruction; destroyed out of LIFO order, the main
thread is left with an alternate signal stack that points at munmap'ed memory."""
import ctypes, os, signal, sys, gc
import numpy as np
import openvino as ov
from openvino import opset8 as ops

libc = ctypes.CDLL(None, use_errno=True)
class stack_t(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]

def altstack():
    s = stack_t(); libc.sigaltstack(None, ctypes.byref(s)); return s.ss_sp or 0, s.ss_size

def mapped(addr):
    for line in open("/proc/self/maps"):
        lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
        if lo <= addr < hi:
            return line.strip()
    return None

def compiled():
    p = ops.parameter([1, 4], np.float32)
    m = ov.Model([ops.relu(p)], [p])
    core = ov.Core()
    c = core.compile_model(m, "CPU")
    return core, c

print("start altstack", hex(altstack()[0]))
mode = sys.argv[1] if len(sys.argv) > 1 else "fifo"
if mode == "single":
    core = ov.Core()
    def compiled():
        p = ops.parameter([1, 4], np.float32)
        return core, core.compile_model(ov.Model([ops.relu(p)], [p]), "CPU")
a = compiled(); print("after A", hex(altstack()[0]))
b = compiled(); print("after B", hex(altstack()[0]))
del a; gc.collect(); print("A freed", hex(altstack()[0]))   # FIFO: first created, first freed
del b; gc.collect()
sp, size = altstack()
print("B freed -> altstack", hex(sp), size, "mapped:", mapped(sp) if sp else "-")
signal.signal(signal.SIGUSR1, lambda *a: print("handler ran"))
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGUSR1)
print("survived signal")
