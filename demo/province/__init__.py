"""The province demo (issue #20): Jiashan's real demo plus synthetic counties of Zhejiang."""
