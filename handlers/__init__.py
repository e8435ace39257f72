"""Chat surfaces, one module per feature (registered through each feature's ``Feature.chat``;
:func:`bot.features.build_registry` builds the registry). No module here imports a platform
library."""
