def hello(name)
  puts "Hello, #{name}!"
end

hello(ARGV.fetch(0, "world"))
