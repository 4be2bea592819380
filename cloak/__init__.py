"""cloak: adversarial cloaking that hides the emotion in a voice from speech-emotion recognizers."""

__version__ = "0.1.0"
