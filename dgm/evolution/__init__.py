"""The evolution loop: parent selection, diagnosis, self-modification and staged evaluation."""
