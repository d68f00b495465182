"""The thin ROS 2 layer: message conversion, nodes, parameters, QoS."""
