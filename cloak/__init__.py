"""cloak: adversarial cloaking that hides the emotion in a voice from speech-emotion recognizers."""
import os

# OpenMP threads that wait for work sleep instead of spinning (read when torch loads, so only if
# cloak is imported first). Spinning made the words guard's two threads 2.4 times slower than one
# beside a busy process; asleep, two are no slower than one there and 1.4 times faster on an idle CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
