"""State-based PPO (rsl-rl) for the assembly tasks: a baseline and a smoke test of the training entry
point. The actor sees the privileged critic state (joints + part poses); with the sparse success
reward it is not expected to solve the task (the paper's RL from scratch scores 0.00)."""

from isaaclab.utils import configclass

from isaaclab_rl.rsl_rl import RslRlMLPModelCfg, RslRlOnPolicyRunnerCfg, RslRlPpoAlgorithmCfg

from vt_refine.utils.device import default_device


@configclass
class AssemblyPPORunnerCfg(RslRlOnPolicyRunnerCfg):
    device = default_device()  # the machine's: rsl-rl would default to cuda:0 and die without a GPU
    num_steps_per_env = 24
    max_iterations = 500
    save_interval = 50
    experiment_name = "vt_refine_assembly_ppo"
    obs_groups = {"actor": ["critic"], "critic": ["critic"]}
    actor = RslRlMLPModelCfg(
        hidden_dims=[256, 128, 64],
        activation="elu",
        obs_normalization=True,
        distribution_cfg=RslRlMLPModelCfg.GaussianDistributionCfg(init_std=0.3),
    )
    critic = RslRlMLPModelCfg(hidden_dims=[256, 128, 64], activation="elu", obs_normalization=True)
    algorithm = RslRlPpoAlgorithmCfg(
        value_loss_coef=1.0,
        use_clipped_value_loss=True,
        clip_param=0.2,
        entropy_coef=0.001,
        num_learning_epochs=5,
        num_mini_batches=4,
        learning_rate=3.0e-4,
        schedule="adaptive",
        gamma=0.999,
        lam=0.95,
        desired_kl=0.01,
        max_grad_norm=1.0,
    )
