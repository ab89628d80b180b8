"""Coders: the TF-IDF baseline and the neural coder (encoder, chunking, spans, label attention, heads).

Submodules are imported explicitly (`from medcoder.models.coder import MedicalCoder`) so that using
the baseline does not import torch.
"""
