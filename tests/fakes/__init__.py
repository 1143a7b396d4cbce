"""Local fakes of outside providers (FCM, WeChat, SMS gateways) that speak their real HTTP shapes."""
