"""Continued masked-LM pretraining (domain adaptation) of an encoder: masking, data, module, encoder I/O.
The command is pretrain.py."""
