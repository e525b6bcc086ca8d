# Sourced by the CIFAR sweeps that ran den_cifar_sparse before 8c13886, where the choice of
# l1_choice/run_conv.sh replaced its values: l1 0.1, gl 0.3, 2 new filters per conv expansion
# and the conv layers' split cap that of the fully connected layers; and, until
# unsplit_drift/ chose restore with sigma_conv 0.01, units a split cap left past the paper's
# sigma_conv 0.02 kept their drift (keep).
# They pin these, to run what they ran; a later override of the same key wins (Hydra), as in
# run_gl.sh's gl 1.
SPARSE_BEFORE=(strategy=den_cifar_sparse strategy.l1=0.1 strategy.gl=0.3 strategy.k_conv=2
  strategy.max_split_conv=null strategy.unsplit_drift=keep strategy.sigma_conv=0.02)
