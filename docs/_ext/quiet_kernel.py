"""The IPython kernel of the documentation build, minus one alarming log line.

ipykernel warns on every start that a kernel listening on this machine's loopback TCP port is
unencrypted; the build starts one per notebook, and readers of the log took the warning for a
problem of xsweep's. Only that message is dropped; every other one is kept.
"""

import logging


class _DropTcpWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "running over TCP without encryption" not in record.getMessage()


logging.getLogger("IPKernelApp").addFilter(_DropTcpWarning())

if __name__ == "__main__":
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
