"""``tocsin demo``: a tool that runs the product brief's example on 127.0.0.1 alone.

Not a pipeline stage: it starts local stand-ins (:mod:`tocsin.demo.standins`) and a
:class:`~tocsin.runtime.Runtime` for them (:mod:`tocsin.demo.demo`).
"""

from tocsin.demo.demo import DemoTimings, run_demo

__all__ = ["DemoTimings", "run_demo"]
