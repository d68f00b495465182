"""Everything that needs PyTorch: the network, losses, training loop, ONNX export.

The core package never imports this subpackage; tools and the torch backend do.
"""
