"""PrivTranR: differentially private synthetic transitions from a diffusion model (pre-trained on public data,
fine-tuned with DP-SGD through Opacus on private data), and the fidelity of what it releases."""
