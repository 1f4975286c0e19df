"""The twin's assets, generated (never downloaded): ALOHA arms (``aloha``, ``kinematics``), the five AutoMate-style
part designs (``parts``, ``part_designs``), their meshes, convex decomposition and USD files (``part_files``,
``convex_decomposition``, ``parts_usd``, ``usd_builder``, ``cache``).

May import ``utils`` only.
"""
