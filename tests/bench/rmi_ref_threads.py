#!/usr/bin/python3
"""Run ../shared/reference/rmi_ref.py with a chosen number of torch threads.

rmi_ref.py fixes torch.set_num_threads(2); a benchmark that runs the
reference next to rminas on one core each needs 1. Usage:
  RMI_THREADS=1 RMI_REF_DIR=../shared/reference /usr/bin/python3 rmi_ref_threads.py rank ...
(the arguments are rmi_ref.py's own)."""
import os
import sys

import torch

threads = int(os.environ.get("RMI_THREADS", "2"))
_set = torch.set_num_threads
torch.set_num_threads = lambda n: _set(threads)
torch.set_num_threads(threads)
sys.path.insert(0, os.environ.get("RMI_REF_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "reference")))
import rmi_ref  # noqa: E402

sys.argv = ["rmi_ref.py"] + sys.argv[1:]
rmi_ref.main()
