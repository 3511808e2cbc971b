"""Pictures: loss curves and attention maps (plots), the interactive attention view, the
encoder-decoder's alignment, and the autograd graph drawn. matplotlib is imported only when a
figure is made."""
