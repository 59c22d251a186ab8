"""aigc: train, sample, evaluate and serve generative image models in PyTorch.

Importing the package is cheap: submodules are imported where they are used.
"""

__version__ = "0.1.0"
