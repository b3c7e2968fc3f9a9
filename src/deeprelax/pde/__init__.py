"""PDE and SDE lab: pure numpy/scipy (no torch, no matplotlib).

Each module implements one object of the theory; its docstring states the equation it solves.

=====================  =================================================================================
module                 what
=====================  =================================================================================
``hopf_cole``          local entropy f_t = −β⁻¹ log(G_{t/β} ∗ e^{−βf}) by quadrature (1-D, 2-D), Gibbs mean
``hopf_lax``           Moreau envelope / proximal map by the lower envelope of parabolas (1-D, 2-D)
``hamilton_jacobi``    explicit monotone finite differences for viscous / inviscid HJ, automatic CFL
``fokker_planck``      Scharfetter-Gummel Fokker-Planck with implicit Euler (mass, positivity, Gibbs)
``convergence``        spectral gap (1-D, 2-D), χ- and W₂-distances, decay rates, the ULA chain's kernel
``controlled_sgd``     controlled SGD: backward HJB + forward Fokker-Planck, simulated SGD vs CSGD
``sde``                Euler-Maruyama, Langevin, first-passage times, Entropy-SGD fast-slow system
``metastability``      exact MFPT, Eyring-Kramers, exit times, forward flux sampling, 2-D barriers
``implicit_gd``        explicit vs implicit (proximal) gradient descent
``sgd_diffusion``      SGD as Euler-Maruyama, stationary densities, discrete OU variance
``minibatch_noise``    minibatch gradient noise of the 1-mean k-means energy
``limit_cycles``       non-gradient forces and non-isotropic noise: Φ ≠ f
=====================  =================================================================================
"""

from deeprelax.pde.controlled_sgd import csgd_densities, simulate_sgd_and_csgd, solve_csgd_value
from deeprelax.pde.fokker_planck import FokkerPlanck1D
from deeprelax.pde.hamilton_jacobi import cfl_time_step, solve_hamilton_jacobi
from deeprelax.pde.hopf_cole import gibbs_mean_1d, local_entropy_1d, local_entropy_2d
from deeprelax.pde.hopf_lax import hopf_lax_1d, hopf_lax_2d, lower_envelope_of_parabolas
from deeprelax.pde.implicit_gd import explicit_gd, implicit_gd, proximal_step
from deeprelax.pde.metastability import (
    energetic_barrier,
    entropic_barrier,
    eyring_kramers,
    eyring_kramers_1d,
    mfpt_1d,
    simulate_exit_times,
)
from deeprelax.pde.sde import entropy_sgd_fast_slow, euler_maruyama, first_passage_times, langevin

__all__ = [
    "FokkerPlanck1D",
    "cfl_time_step",
    "csgd_densities",
    "energetic_barrier",
    "entropic_barrier",
    "entropy_sgd_fast_slow",
    "euler_maruyama",
    "explicit_gd",
    "eyring_kramers",
    "eyring_kramers_1d",
    "first_passage_times",
    "gibbs_mean_1d",
    "hopf_lax_1d",
    "hopf_lax_2d",
    "implicit_gd",
    "langevin",
    "local_entropy_1d",
    "local_entropy_2d",
    "lower_envelope_of_parabolas",
    "mfpt_1d",
    "proximal_step",
    "simulate_exit_times",
    "simulate_sgd_and_csgd",
    "solve_csgd_value",
    "solve_hamilton_jacobi",
]
